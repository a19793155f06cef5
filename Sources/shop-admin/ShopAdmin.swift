import ArgumentParser
import EventStore
import Foundation
import Logging

@main
struct ShopAdmin: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shop-admin",
        abstract: "Operate the shop: migrate its databases, seed the demo catalog, rebuild and verify its views, re-drive parked sagas, look into its event stores.",
        subcommands: [Migrate.self, Seed.self, ProjectionsCommand.self, SagasCommand.self, OrdersCommand.self, Tokens.self, Events.self, Demo.self]
    )
}

/// The bounded contexts, each with its own database.
enum Context: String, CaseIterable, ExpressibleByArgument {
    case catalog, ordering, billing

    /// `SHOP_<CONTEXT>_DATABASE_URL`, unless `explicit` is given.
    func databaseURL(_ explicit: String? = nil) throws -> DatabaseURL {
        let variable = "SHOP_\(rawValue.uppercased())_DATABASE_URL"
        guard let text = explicit ?? ProcessInfo.processInfo.environment[variable], !text.isEmpty else {
            throw ValidationError("\(variable) is not set: run 'bin/db start', then 'eval \"$(bin/db env)\"' (or pass --database-url)")
        }
        do { return try DatabaseURL(text) } catch { throw ValidationError("\(variable): \(error)") }
    }
}

/// Options every command that talks to a context's database takes.
struct DatabaseOptions: ParsableArguments {
    @Option(help: "The context whose event store to use.")
    var context: Context = .catalog

    @Option(help: "The context's PostgreSQL URL (default: $SHOP_<CONTEXT>_DATABASE_URL).")
    var databaseURL: String?

    func url() throws -> DatabaseURL { try context.databaseURL(databaseURL) }
}

func makeLogger(_ label: String) -> Logger {
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = ProcessInfo.processInfo.environment["SHOP_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .warning
        return handler
    }
    return Logger(label: label)
}

/// Runs `body` with an event store whose service runs meanwhile.
func withEventStore<Result: Sendable>(_ url: DatabaseURL, logger: Logger, _ body: @Sendable (EventStore) async throws -> Result) async throws -> Result {
    let store = EventStore(.init(database: url, maximumConnections: 4), logger: logger)
    return try await withThrowingTaskGroup(of: Result?.self) { group in
        group.addTask { await store.run(); return nil }
        defer { group.cancelAll() }
        await store.waitUntilRunning()
        return try await body(store)
    }
}

/// A failure the user can act on: printed as one line, exit status 1.
struct Failure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
