import Essentials
import EventStore
import Foundation
import Logging
import PostgresNIO

/// Each test gets a database of its own in the PostgreSQL that bin/test starts, so tests run in parallel
/// without seeing each other's events.
public enum TestDatabase {
    public static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    public static let migrations = repositoryRoot.appendingPathComponent("Migrations", isDirectory: true)

    public static let logger: Logger = {
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        return logger
    }()

    /// The server's maintenance database, from `SHOP_TEST_DATABASE_URL`.
    public static func serverURL() throws -> DatabaseURL {
        guard let text = ProcessInfo.processInfo.environment["SHOP_TEST_DATABASE_URL"], !text.isEmpty else {
            throw TestSetupError(
                "SHOP_TEST_DATABASE_URL is not set: these tests need PostgreSQL. Run them with bin/test, which starts a throwaway server.")
        }
        return try DatabaseURL(text)
    }

    /// A new, empty database; with the event store schema unless `migrated` is false.
    public static func create(migrated: Bool = true, folders: [String] = ["eventstore"]) async throws -> DatabaseURL {
        let server = try serverURL()
        let name = "test_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(16)
        do {
            try await withConnection(server) { connection in
                try await connection.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: logger)
            }
        } catch {
            throw TestSetupError("cannot create a test database on \(server) (is PostgreSQL running? use bin/test): \(describe(error))")
        }
        let url = server.with(database: String(name))
        if migrated {
            try await Migrator(directory: migrations, folders: folders).migrate(url, logger: logger)
        }
        return url
    }

    @discardableResult
    public static func withConnection<Result: Sendable>(_ url: DatabaseURL, _ body: (PostgresConnection) async throws -> Result) async throws -> Result {
        let client = PostgresClient(configuration: .init(
            host: url.host, port: url.port, username: url.username, password: url.password, database: url.database, tls: .disable))
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            return try await client.withConnection(body)
        }
    }
}

public struct TestSetupError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Runs `body` with a running event store on a fresh database.
public func withStore<Result: Sendable>(
    pollInterval: Duration = .seconds(1), readInterval: Duration = .milliseconds(10),
    _ body: (EventStore, DatabaseURL) async throws -> Result
) async throws -> Result {
    let url = try await TestDatabase.create()
    return try await withRunningStore(url, pollInterval: pollInterval, readInterval: readInterval) { try await body($0, url) }
}

/// Runs `body` with a running event store on the database at `url`.
public func withRunningStore<Result: Sendable>(
    _ url: DatabaseURL, pollInterval: Duration = .seconds(1), readInterval: Duration = .milliseconds(10),
    _ body: (EventStore) async throws -> Result
) async throws -> Result {
    let store = EventStore(.init(database: url, maximumConnections: 24, pollInterval: pollInterval, readInterval: readInterval),
                           logger: TestDatabase.logger)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { await store.run() }
        defer { group.cancelAll() }
        await store.waitUntilRunning()
        return try await body(store)
    }
}

/// Awaits `body`, failing if it takes longer than `limit`: for waiting on a condition without sleeping.
public func within<Result: Sendable>(
    _ limit: Duration, _ what: String, _ body: @escaping @Sendable () async throws -> Result
) async throws -> Result {
    try await withThrowingTaskGroup(of: Result?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: limit)
            return nil
        }
        defer { group.cancelAll() }
        guard let first = try await group.next(), let result = first else {
            throw TestSetupError("timed out after \(limit) waiting for \(what)")
        }
        return result
    }
}

/// An event with a small JSON payload.
public func event(_ value: Int, id: UUID = UUID(), type: String = "test.happened", metadata: EventMetadata = .init()) -> NewEvent {
    NewEvent(id: id, type: type, payload: Data(#"{"value":\#(value)}"#.utf8), metadata: metadata)
}

public func uniqueStream(_ category: String = "test") -> StreamName {
    try! StreamName(category: category, id: UUID().uuidString.lowercased())
}

/// Reads every event committed to the store, in commit order, waiting until no open transaction of the store's
/// database holds any back.
public func readEverything(_ store: EventStore, batch: Int = 257) async throws -> [RecordedEvent] {
    var all = try await readAvailable(store, batch: batch)
    var position = all.last?.position ?? .start
    while try await store.isHeldBack(after: position) {
        // A subscription waits for what is held back (looking again soon while it is).
        for try await events in store.subscribeToAll(from: position, batchSize: batch) {
            all += events
            position = events.last!.position
            break
        }
        let more = try await readAvailable(store, after: position, batch: batch)
        all += more
        position = more.last?.position ?? position
    }
    return all
}

/// Reads what is readable now, without waiting for anything held back.
public func readAvailable(_ store: EventStore, after start: Position = .start, batch: Int = 257) async throws -> [RecordedEvent] {
    var all: [RecordedEvent] = []
    var position = start
    while true {
        let events = try await store.readAll(after: position, limit: batch)
        guard let last = events.last else { return all }
        all += events
        position = last.position
    }
}

/// A new, empty folder for a test's SQLite views.
public func scratchViews() -> URL {
    FileManager.default.temporaryDirectory.appendingPathComponent("views-\(UUID())", isDirectory: true)
}
