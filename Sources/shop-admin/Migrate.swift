import ArgumentParser
import EventStore
import Foundation

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Apply pending migrations to the contexts' databases.",
        discussion: """
            Each context's database gets Migrations/eventstore, then Migrations/<context>, file by file, each in \
            its own transaction. A file edited after it was applied is refused. Safe to run from several \
            processes at once.
            """
    )

    @Option(name: .customLong("context"), help: "Migrate only these contexts (repeatable; default: all).")
    var contexts: [Context] = []

    @Option(help: "The database URL (only with a single --context; default: $SHOP_<CONTEXT>_DATABASE_URL).")
    var databaseURL: String?

    @Option(help: "The Migrations folder (default: $SHOP_MIGRATIONS_DIR, or found above the working directory).")
    var migrations: String?

    func validate() throws {
        if databaseURL != nil && contexts.count != 1 {
            throw ValidationError("--database-url needs exactly one --context")
        }
    }

    func run() async throws {
        let logger = makeLogger("shop-admin")
        let directory = try migrations.map { URL(fileURLWithPath: $0, isDirectory: true) } ?? Migrator.defaultDirectory()
        for context in contexts.isEmpty ? Context.allCases : contexts {
            let url = try context.databaseURL(databaseURL)
            let migrator = try Migrator(directory: directory, folders: ["eventstore", context.rawValue])
            do {
                let applied = try await migrator.migrate(url, logger: logger)
                let names = applied.map(\.description).joined(separator: ", ")
                print("\(context.rawValue): " + (applied.isEmpty ? "up to date" : "applied \(names)"))
            } catch let error as MigrationError {
                throw Failure("\(context.rawValue): \(error)")
            } catch {
                throw Failure("\(context.rawValue): cannot migrate \(url): \(describe(error))")
            }
        }
    }
}
