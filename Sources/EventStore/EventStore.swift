import Essentials
import Foundation
import Tracing
import Logging
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// A context's event store, in that context's PostgreSQL database (schema: `Migrations/eventstore`).
///
/// - Appends are atomic, take one round trip, and check the stream's expected version.
/// - Reading all events goes in commit order and never skips one (see ``Position``).
/// - Subscriptions catch up from a checkpoint, then follow live: `LISTEN/NOTIFY` wakes them, and they poll
///   as a fallback.
///
/// The store is a `Service`: ``run()`` must be running (under a `ServiceGroup`, or in a task) while it is used.
/// It runs the connection pool, the listener that wakes subscribers, and the notifier that tells other
/// processes about this one's appends.
public final class EventStore: Service, Sendable {
    public struct Configuration: Sendable {
        public var database: DatabaseURL
        /// The most connections the store opens (one of them listens for appends).
        public var maximumConnections: Int
        /// How long a subscriber waits for a wake-up before it looks again anyway.
        public var pollInterval: Duration
        /// The shortest time between two announcements of this process's appends to other processes. An
        /// append after a quiet spell is announced at once; under load, one announcement covers every append
        /// of an interval. Subscribers in this process are woken at once regardless.
        public var announceInterval: Duration
        /// The shortest time between two reads of a live subscriber woken by appends. A wake-up after a quiet
        /// spell is read at once; under load, one read (and one batch for its consumer to apply) covers every
        /// append of an interval, instead of one each. Catching up is not held back by it.
        public var readInterval: Duration
        /// How long a call of the database may take (a transaction, all of it) before the caller stops waiting for
        /// it and gets ``DatabaseUnavailable``: see ``withDeadline(_:_:_:)``.
        public var queryDeadline: Duration

        public init(
            database: DatabaseURL, maximumConnections: Int = 20,
            pollInterval: Duration = .seconds(1), announceInterval: Duration = .milliseconds(10), readInterval: Duration = .milliseconds(10),
            queryDeadline: Duration = .seconds(10)
        ) {
            self.database = database
            self.queryDeadline = queryDeadline
            self.maximumConnections = maximumConnections
            self.pollInterval = pollInterval
            self.announceInterval = announceInterval
            self.readInterval = readInterval
        }
    }

    /// The advisory-lock key space of stream append locks (the first key of `pg_advisory_xact_lock(int, int)`);
    /// `append_events` takes the same lock.
    static let streamLockSpace: Int32 = 24158

    /// The channel on which appends are announced (at most once per `announceInterval`): a hint (listeners re-read
    /// the store) whose payload is the announcing store's ``announcer``.
    public static let announcementChannel = "shop_events_appended"
    /// Names this store's announcements, so that its own listener ignores them: its subscribers were woken when
    /// it appended, and waking them again would cost each a read that finds nothing.
    let announcer = UUID().uuidString

    public let configuration: Configuration
    let client: PostgresClient
    public let logger: Logger
    /// Bumped whenever events may have become readable: a notification arrived or this process appended.
    /// A wake-up hint for whoever waits for new events; look again after it, and on a timeout too.
    public let eventsAvailable = ChangeSignal()
    /// Bumped by every append of this process; the notifier tells the other processes.
    let appendedHere = ChangeSignal()
    let running = ChangeSignal()
    /// Bumped each time the listener for other processes' announcements (re)connects.
    let listening = ChangeSignal()
    /// The signals of ``watching(_:_:)``, per stream, with how many wait on each.
    let streamSignals = ChangeSignals<StreamName>()
    /// Planned commands take turns on each stream they decide on (``EventStoreTransaction/takeTurn(on:)``).
    let plannedTurns = Turns<StreamName>()
    /// Ids for the connections of ``withDedicatedConnection(_:)`` (for their logs).
    private let dedicatedConnections = Atomic(0)

    public init(_ configuration: Configuration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        var clientConfiguration = configuration.database.clientConfiguration
        clientConfiguration.options.maximumConnections = configuration.maximumConnections
        // The pool's own chatter (such as a lease racing the pool's start) only when debugging; errors always.
        var background = logger
        if background.logLevel > .debug { background.logLevel = max(background.logLevel, .error) }
        self.client = PostgresClient(configuration: clientConfiguration, backgroundLogger: background)
    }

    /// Runs the store until the task is cancelled or, under a `ServiceGroup`, a graceful shutdown begins.
    ///
    /// The connection pool stops last, after the listener and the notifier. Stopping it closes its connections
    /// at once, and a query whose connection closes between its lease and its write is never answered (the
    /// write fails unseen): the notifier, caught announcing an append at that moment, would wait forever, and
    /// `run()` with it. So the pool runs in a task of its own, which the cancellation of `run()` does not reach.
    public func run() async {
        let pool = Task { await client.run() }
        running.signal()
        await cancelWhenGracefulShutdown {
            await withDiscardingTaskGroup { group in
                group.addTask { await self.listenForAppends() }
                group.addTask { await self.announceAppends() }
            }
        }
        pool.cancel()
        await pool.value
    }

    /// Returns once ``run()`` has started: for code that starts the store and uses it at once.
    public func waitUntilRunning() async {
        await running.wait(past: 0)
    }

    /// Returns once the store listens for other processes' announcements (its listener's first connection is up): from
    /// then on, an append committed by another process wakes this one's waiters.
    public func waitUntilListening() async {
        await listening.wait(past: 0)
    }

    /// Whether `error` leaves it unknown whether what was being written committed: the database went away or did not
    /// answer in time.
    static func isUnknownOutcome(_ error: any Error) -> Bool {
        if error is DatabaseUnavailable { return true }
        if let error = error as? PSQLError { return error.isUnavailability }
        return false
    }

    /// The actions of ``Transaction/ifOutcomeUnknown(_:)``.
    final class UnknownOutcome: Sendable {
        private let actions = Mutex<[@Sendable () -> Void]>([])
        func add(_ action: @escaping @Sendable () -> Void) { actions.withLock { $0.append(action) } }
        func run() { for action in actions.withLock({ actions in defer { actions = [] }; return actions }) { action() } }
    }

    /// Runs `body` with the store's pool, within the store's `queryDeadline` (see ``withDeadline(_:_:_:)``): every
    /// call of the database goes through here, so that none can wait for ever.
    func pooled<Result: Sendable>(_ what: String, _ body: @escaping @Sendable (PostgresClient) async throws -> Result) async throws -> Result {
        let client = client
        return try await withDeadline(configuration.queryDeadline, what) { try await body(client) }
    }

    /// Lends a connection of the store's pool, for a context's own tables in the same database.
    ///
    /// Within the store's `queryDeadline`, as every call of the database (see ``withDeadline(_:_:_:)``).
    public func withConnection<Result: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> Result) async throws -> Result {
        try await pooled("a query") { client in try await client.withConnection { try await body($0) } }
    }

    /// Runs `body` on a connection of its own, outside the pool, and closes it afterwards: for session state that
    /// must die with the connection (session advisory locks), on a connection that its user may close at any time.
    ///
    /// A pooled connection must never be closed by its user: the pool may hand it to the next caller before it
    /// sees the close, and a query written to a closed connection is never answered (the write fails unseen).
    public func withDedicatedConnection<Result: Sendable>(_ body: (PostgresConnection) async throws -> Result) async throws -> Result {
        let connection = try await PostgresConnection.connect(
            configuration: try configuration.database.connectionConfiguration(), id: Int(dedicatedConnections.add(1, ordering: .relaxed).newValue),
            logger: logger)
        do {
            let result = try await body(connection)
            try? await connection.close()
            return result
        } catch {
            try? await connection.close()
            throw error
        }
    }

    /// Checks that the database answers within `timeout`: a lease waits as long as the pool keeps failing to connect,
    /// and a readiness check (or a graceful shutdown waiting on one) must not wait with it.
    public func ping(timeout: Duration = .seconds(2)) async throws {
        try await withThrowingTaskGroup(of: Bool.self) { group in
            group.addTask {
                try await self.client.run("SELECT 1", logger: self.logger)
                return true
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                return false
            }
            defer { group.cancelAll() }
            guard try await group.next() == true else { throw EventStoreError.unexpectedResponse("the database did not answer within \(timeout)") }
        }
    }

}
