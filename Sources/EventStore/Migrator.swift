import Crypto
import Foundation
import Logging
import PostgresNIO

/// Applies numbered SQL migrations to a database: `Migrations/<folder>/NNNN_name.sql`, folder after folder,
/// each file in its own transaction, recorded in `schema_migrations` with its SHA-256.
///
/// - A file that was applied and then edited is refused: applied migrations are history; change the schema
///   with a new file.
/// - A file numbered below one already applied in its folder is refused (it would run out of order).
/// - Migrators may run at once (several service instances starting): each transaction holds an advisory
///   lock, so one applies a file while the others wait and then find it applied.
///
/// A file may hold many statements; it runs inside a transaction, so it must not contain its own
/// `BEGIN`/`COMMIT` or statements that refuse transactions (`CREATE INDEX CONCURRENTLY`).
public struct Migrator: Sendable {
    public struct Migration: Sendable, Hashable, CustomStringConvertible {
        public let folder: String
        public let version: Int
        public let name: String
        public let sql: String
        /// SHA-256 of the file, hex.
        public let checksum: String

        public var description: String { "\(folder)/\(String(format: "%04d", version))_\(name).sql" }
    }

    /// In the order they apply.
    public let migrations: [Migration]
    let folders: [String]

    /// Reads `directory/<folder>/*.sql` for each folder, in the order given. A missing folder holds no
    /// migrations.
    public init(directory: URL, folders: [String]) throws(MigrationError) {
        var migrations: [Migration] = []
        for folder in folders {
            let folderURL = directory.appendingPathComponent(folder, isDirectory: true)
            guard let files = try? FileManager.default.contentsOfDirectory(atPath: folderURL.path) else { continue }
            var inFolder: [Int: Migration] = [:]
            for file in files.sorted() where file.hasSuffix(".sql") {
                guard let (version, name) = Self.parse(fileName: file) else { throw .badFileName("\(folder)/\(file)") }
                guard let data = FileManager.default.contents(atPath: folderURL.appendingPathComponent(file).path),
                    let sql = String(data: data, encoding: .utf8)
                else { throw .unreadable("\(folder)/\(file)") }
                let migration = Migration(
                    folder: folder, version: version, name: name, sql: sql,
                    checksum: SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined())
                if let other = inFolder.updateValue(migration, forKey: version) {
                    throw .duplicateVersion("\(other) and \(migration)")
                }
            }
            migrations += inFolder.values.sorted { $0.version < $1.version }
        }
        self.migrations = migrations
        self.folders = folders
    }

    /// `NNNN_name.sql`: four or more digits, then lower-case letters, digits and underscores.
    static func parse(fileName: String) -> (Int, String)? {
        let stem = fileName.dropLast(".sql".count)
        guard let underscore = stem.firstIndex(of: "_") else { return nil }
        let digits = stem[..<underscore], name = stem[stem.index(after: underscore)...]
        guard digits.count >= 4, digits.allSatisfy(\.isASCII), let version = Int(digits), version > 0,
            !name.isEmpty, name.allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || $0 == "_") })
        else { return nil }
        return (version, String(name))
    }

    /// Applies every migration not yet applied to the database at `url`; returns those it applied.
    @discardableResult
    public func migrate(_ url: DatabaseURL, logger: Logger) async throws -> [Migration] {
        let connection = try await PostgresConnection.connect(configuration: try url.connectionConfiguration(), id: 1, logger: logger)
        do {
            let applied = try await migrate(on: connection, database: url.database, logger: logger)
            try await connection.close()
            return applied
        } catch {
            try? await connection.close()
            throw error
        }
    }

    private func migrate(on connection: PostgresConnection, database: String, logger: Logger) async throws -> [Migration] {
        // Runs a whole file, many statements at once (the extended protocol takes one statement a query).
        try await connection.run("""
            CREATE OR REPLACE FUNCTION pg_temp.shop_apply_migration(sql text) RETURNS void
            LANGUAGE plpgsql AS $$ BEGIN EXECUTE sql; END $$
            """, logger: logger)
        var applied: [Migration] = []
        while let migration = try await applyNext(on: connection, database: database, logger: logger) {
            applied.append(migration)
        }
        return applied
    }

    /// In one transaction under the migration lock: checks the history, applies the first pending migration.
    private func applyNext(on connection: PostgresConnection, database: String, logger: Logger) async throws -> Migration? {
        try await connection.run("BEGIN", logger: logger)
        do {
            try await connection.run("SELECT pg_advisory_xact_lock(\(Self.lockKey))", logger: logger)
            try await connection.run("""
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    folder      text        NOT NULL,
                    version     integer     NOT NULL,
                    name        text        NOT NULL,
                    checksum    text        NOT NULL,
                    applied_at  timestamptz NOT NULL DEFAULT now(),
                    duration_ms integer     NOT NULL,
                    PRIMARY KEY (folder, version)
                )
                """, logger: logger)
            var history: [String: [Int: String]] = [:]
            for try await (folder, version, checksum) in try await connection.query(
                "SELECT folder, version, checksum FROM schema_migrations", logger: logger
            ).decode((String, Int32, String).self) {
                history[folder, default: [:]][Int(version)] = checksum
            }
            let pending = try check(history, database: database)
            guard let next = pending.first else {
                try await connection.run("COMMIT", logger: logger)
                return nil
            }
            let started = ContinuousClock.now
            do {
                try await connection.run("SELECT pg_temp.shop_apply_migration(\(next.sql))", logger: logger)
            } catch {
                throw MigrationError.failed(next.description, database: database, reason: describe(error))
            }
            let elapsed = ContinuousClock.now - started
            let milliseconds = Int32(clamping: elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000)
            try await connection.run("""
                INSERT INTO schema_migrations (folder, version, name, checksum, duration_ms)
                VALUES (\(next.folder), \(Int32(next.version)), \(next.name), \(next.checksum), \(milliseconds))
                """, logger: logger)
            try await connection.run("COMMIT", logger: logger)
            logger.info("applied migration", metadata: ["migration": "\(next)", "database": "\(database)", "ms": "\(milliseconds)"])
            return next
        } catch {
            _ = try? await connection.query("ROLLBACK", logger: logger)
            throw error
        }
    }

    /// The migrations still to apply, after checking that the applied ones are what the files say.
    func check(_ history: [String: [Int: String]], database: String) throws(MigrationError) -> [Migration] {
        var pending: [Migration] = []
        for migration in migrations {
            if let recorded = history[migration.folder]?[migration.version] {
                guard recorded == migration.checksum else {
                    throw .edited(migration.description, database: database, recorded: recorded, actual: migration.checksum)
                }
            } else {
                if let newest = history[migration.folder]?.keys.max(), newest > migration.version {
                    throw .outOfOrder(migration.description, database: database, newestApplied: newest)
                }
                pending.append(migration)
            }
        }
        for folder in folders {
            let known = Set(migrations.lazy.filter { $0.folder == folder }.map(\.version))
            if let missing = history[folder]?.keys.filter({ !known.contains($0) }).min() {
                throw .missing(folder: folder, version: missing, database: database)
            }
        }
        return pending
    }

    /// The advisory lock that serialises migrators of one database.
    static let lockKey: Int64 = 0x7368_6f70_6d69_6772  // "shopmigr" in ASCII

    /// Where the `Migrations` folder is: `$SHOP_MIGRATIONS_DIR`, else the nearest `Migrations` folder above
    /// the working directory or above the running executable (which sits in the checkout's `.build`).
    public static func defaultDirectory() throws(MigrationError) -> URL {
        if let configured = ProcessInfo.processInfo.environment["SHOP_MIGRATIONS_DIR"], !configured.isEmpty {
            return URL(fileURLWithPath: configured, isDirectory: true)
        }
        let starts = [
            URL(fileURLWithPath: FileManager.default.currentDirectoryPath, isDirectory: true),
            URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().deletingLastPathComponent(),
        ]
        for start in starts {
            var directory = start.standardizedFileURL
            while true {
                let candidate = directory.appendingPathComponent("Migrations/eventstore", isDirectory: true)
                var isDirectory: ObjCBool = false
                if FileManager.default.fileExists(atPath: candidate.path, isDirectory: &isDirectory), isDirectory.boolValue {
                    return candidate.deletingLastPathComponent()
                }
                let parent = directory.deletingLastPathComponent()
                if parent.path == directory.path { break }
                directory = parent
            }
        }
        throw .noDirectory
    }
}

public enum MigrationError: Error, Hashable, CustomStringConvertible {
    case badFileName(String)
    case unreadable(String)
    case duplicateVersion(String)
    case edited(String, database: String, recorded: String, actual: String)
    case outOfOrder(String, database: String, newestApplied: Int)
    case missing(folder: String, version: Int, database: String)
    case failed(String, database: String, reason: String)
    case noDirectory

    public var description: String {
        switch self {
        case .badFileName(let file):
            "\(file): a migration file is named NNNN_name.sql (digits, then lower-case letters, digits and _)"
        case .unreadable(let file): "\(file) cannot be read as UTF-8 text"
        case .duplicateVersion(let files): "two migrations have the same number: \(files)"
        case .edited(let migration, let database, let recorded, let actual):
            "\(migration) was edited after it was applied to database \(database) (applied: sha256 \(recorded.prefix(12))…, file now: \(actual.prefix(12))…). Applied migrations must not change: restore the file and put the change in a new migration."
        case .outOfOrder(let migration, let database, let newest):
            "\(migration) is not applied to database \(database), but a later one (\(String(format: "%04d", newest))) is: renumber it after \(String(format: "%04d", newest))."
        case .missing(let folder, let version, let database):
            "database \(database) has migration \(folder)/\(String(format: "%04d", version)) applied, but there is no such file: is this an older checkout than the database?"
        case .failed(let migration, let database, let reason):
            "\(migration) failed on database \(database), nothing of it was applied: \(reason)"
        case .noDirectory:
            "no Migrations folder found above the working directory or the executable: set SHOP_MIGRATIONS_DIR"
        }
    }
}
