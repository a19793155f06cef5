import EventStore
import Foundation
import GRDB
import Logging
import ServiceLifecycle
import Synchronization

/// Feeds a ``Projection`` from an event store: it follows the store from the view's checkpoint and applies
/// each batch of events and the new checkpoint in one SQLite transaction (WAL), so an event's effect lands
/// exactly once, also across crashes. Queries read the view through ``read(_:)`` while it is written.
///
/// A `Service`: run it in the context's process beside the store.
public final class Projector: Service, Sendable {
    public let projection: any Projection
    let store: EventStore
    let database: DatabasePool
    let batchSize: Int
    let logger: Logger

    public struct Status: Sendable, Equatable {
        /// The position of the last event the view has applied (or skipped).
        public var position: Position
        /// Events handled since the projector started.
        public var eventsHandled: Int
        /// When it last handled a batch.
        public var lastBatchAt: Date?
        /// Events per second over its last batch.
        public var rate: Double
    }

    private let state: Mutex<Status>
    private let progress = ChangeSignal()

    /// Opens (or creates) `<directory>/<name>.sqlite`. A file of another version of the projection is
    /// replaced by a new one, to be rebuilt from the first event.
    public init(_ projection: any Projection, store: EventStore, directory: URL, batchSize: Int = 500, logger: Logger) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let path = directory.appendingPathComponent("\(projection.name).sqlite").path
        var database = try DatabasePool(path: path)
        if try Self.storedVersion(database) != projection.version {
            try database.close()
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
            database = try DatabasePool(path: path)
        }
        try database.write { db in
            if try !db.tableExists("projection_state") {
                try db.execute(sql: """
                    CREATE TABLE projection_state (
                        name TEXT PRIMARY KEY, version INTEGER NOT NULL,
                        transaction_id INTEGER NOT NULL, global_position INTEGER NOT NULL, updated_at TEXT)
                    """)
                try projection.createSchema(db)
                try db.execute(sql: "INSERT INTO projection_state VALUES (?, ?, 0, 0, NULL)", arguments: [projection.name, projection.version])
            }
        }
        let position = try database.read { db in
            let row = try Row.fetchOne(db, sql: "SELECT transaction_id, global_position FROM projection_state")
            return Position(transactionID: row?["transaction_id"] ?? 0, globalPosition: row?["global_position"] ?? 0)
        }
        self.projection = projection
        self.store = store
        self.database = database
        self.batchSize = batchSize
        self.logger = logger
        self.state = Mutex(Status(position: position, eventsHandled: 0, lastBatchAt: nil, rate: 0))
    }

    static func storedVersion(_ database: DatabasePool) throws -> Int? {
        try database.read { db in
            guard try db.tableExists("projection_state") else { return nil }
            return try Int.fetchOne(db, sql: "SELECT version FROM projection_state")
        }
    }

    public var status: Status { state.withLock { $0 } }

    /// How far behind the store the view is: events committed but not yet applied, and the age of the oldest.
    public struct Lag: Sendable, Equatable, Codable {
        public let events: Int
        public let seconds: Double
    }

    public func lag() async throws -> Lag {
        let (events, oldest) = try await store.backlog(after: position)
        return Lag(events: events, seconds: oldest.map { max(0, Date().timeIntervalSince($0)) } ?? 0)
    }
    public var position: Position { state.withLock { $0.position } }

    /// Reads the view.
    public func read<T: Sendable>(_ body: @Sendable (Database) throws -> T) async throws -> T {
        try await database.read(body)
    }

    /// Waits until the view has reached `position` (for a client that reads its own writes), at most
    /// `timeout`; says whether it did.
    public func wait(until position: Position, timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while true {
            let seen = progress.generation
            if self.position >= position { return true }
            let left = deadline - ContinuousClock.now
            guard left > .zero else { return false }
            await progress.wait(past: seen, timeout: left)
        }
    }

    public func run() async throws {
        await store.waitUntilRunning()
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await self.follow()
                } catch {
                    if Task.isCancelled { return }
                    // The batch's transaction rolled back: nothing of it was applied. Start again from the checkpoint.
                    self.logger.error("projection failed; retrying from its checkpoint",
                                      metadata: ["projection": "\(self.projection.name)", "error": "\(describe(error))"])
                    try? await Task.sleep(for: .seconds(1))
                }
            }
        }
    }

    private func follow() async throws {
        for try await batch in store.subscribeToAll(from: position, batchSize: batchSize) {
            let started = ContinuousClock.now
            try await apply(batch)
            let elapsed = ContinuousClock.now - started
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            state.withLock { status in
                status.position = batch.last!.position
                status.eventsHandled += batch.count
                status.lastBatchAt = Date()
                status.rate = seconds > 0 ? Double(batch.count) / seconds : 0
            }
            progress.signal()
        }
    }

    /// Applies `batch` and moves the checkpoint, in one transaction.
    func apply(_ batch: [RecordedEvent]) async throws {
        guard let last = batch.last else { return }
        let projection = self.projection
        try await database.write { db in
            for event in batch where projection.eventTypes.contains(event.type) {
                try projection.apply(event, to: db)
            }
            try db.execute(
                sql: "UPDATE projection_state SET transaction_id = ?, global_position = ?, updated_at = ?",
                arguments: [last.position.transactionID, last.position.globalPosition, Date().formatted(.iso8601)])
        }
    }
}
