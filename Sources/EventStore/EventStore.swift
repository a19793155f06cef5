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
    private let announcer = UUID().uuidString

    public let configuration: Configuration
    let client: PostgresClient
    public let logger: Logger
    /// Bumped whenever events may have become readable: a notification arrived or this process appended.
    /// A wake-up hint for whoever waits for new events; look again after it, and on a timeout too.
    public let eventsAvailable = ChangeSignal()
    /// Bumped by every append of this process; the notifier tells the other processes.
    private let appendedHere = ChangeSignal()
    private let running = ChangeSignal()
    /// The signals of ``watching(_:_:)``, per stream, with how many wait on each.
    private let streamSignals = Mutex<[StreamName: (signal: ChangeSignal, watchers: Int)]>([:])
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

    // MARK: Appending

    /// Appends `events` to `stream`, atomically and in one round trip.
    ///
    /// - Throws: ``WrongExpectedVersion`` (nothing written) when the stream is not at `expectedVersion`;
    ///   ``EventStoreError/eventIDConflict(stream:)`` when some ids are already stored otherwise than as
    ///   this same batch.
    ///
    /// Appending a batch whose ids are all already stored, in this stream and in this order, is an idempotent
    /// no-op: it writes nothing, ignores `expectedVersion`, and answers what the first append answered (with
    /// ``AppendResult/wasDuplicate`` set), so a writer that lost the answer to an append can simply retry it.
    @discardableResult
    public func append(_ events: [NewEvent], to stream: StreamName, expectedVersion: ExpectedVersion) async throws -> AppendResult {
        try await withSpan("append \(stream.category)") { span in
            span.attributes["shop.events"] = events.count
            let statement = try AppendEvents(events, to: stream, expectedVersion: expectedVersion)
            let result = try await Self.runAppend(stream: stream, expectedVersion: expectedVersion) {
                try await pooled("an append") { client in try await Self.all(client.execute(statement, logger: self.logger)) }
            }
            if !result.wasDuplicate { appended(to: [stream]) }
            return result
        }
    }

    /// Runs `body` in one database transaction: its appends commit together with whatever else it writes
    /// through ``Transaction/connection`` (an idempotency record, an outbox row), or not at all.
    ///
    /// Appends in one transaction take their streams' locks in the order they are made: two transactions
    /// that append to the same streams in opposite orders can deadlock (PostgreSQL then aborts one).
    ///
    /// The transaction as a whole has the store's `queryDeadline`: past it, the caller gets ``DatabaseUnavailable``
    /// (the transaction may still commit or roll back on its own).
    public func withTransaction<Result: Sendable>(_ body: @escaping @Sendable (Transaction) async throws -> Result) async throws -> Result {
        // On the connection's event loop: no thread hop between one round trip and the next.
        let logger = logger
        let unknown = UnknownOutcome()
        let result: (Result, Set<StreamName>)
        do {
            result = try await pooled("a transaction") { client in try await client.withConnection { connection in
            try await withTaskExecutorPreference(EventLoopExecutor(connection.eventLoop)) {
                try await connection.run("BEGIN", logger: logger)
                let transaction = Transaction(connection: connection, logger: logger, ifOutcomeUnknown: unknown)
                do {
                    let result = try await body(transaction)
                    try await connection.run("COMMIT", logger: logger)
                    transaction.committed()
                    return (result, transaction.appendedStreams)
                } catch {
                    do {
                        try await connection.run("ROLLBACK", logger: logger)
                    } catch let rollbackError {
                        logger.warning("ROLLBACK failed", metadata: ["error": "\(describe(rollbackError))"])
                    }
                    throw error
                }
            }
            } }
        } catch where EventStore.isUnknownOutcome(error) {
            unknown.run()
            throw error
        }
        if !result.1.isEmpty { appended(to: result.1) }
        return result.0
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

    /// An open transaction of ``withTransaction(_:)``, or a planned one of ``runPlanned(_:write:applied:)``: the
    /// same command code runs against either.
    public final class Transaction: Sendable {
        public let logger: Logger
        /// The connection of a live transaction; `nil` for a planned one, which records its writes in `planned`.
        private let live: PostgresConnection?
        private let planned = Mutex(PlannedWrites())
        private let appendedTo = Mutex<Set<StreamName>>([])
        private let commitActions = Mutex<[@Sendable () -> Void]>([])
        /// What to forget if it cannot be known whether the transaction committed.
        let unknownOutcomeActions: UnknownOutcome

        init(connection: PostgresConnection, logger: Logger, ifOutcomeUnknown: UnknownOutcome) {
            self.live = connection
            self.logger = logger
            self.unknownOutcomeActions = ifOutcomeUnknown
        }

        init(planningWith logger: Logger) {
            self.live = nil
            self.logger = logger
            self.unknownOutcomeActions = UnknownOutcome()
        }

        /// Runs `action` if the database goes away before the caller can know whether the transaction committed (the
        /// connection died during COMMIT, or the deadline passed): for what remembers the transaction's states, which
        /// must then be read again rather than trusted.
        public func ifOutcomeUnknown(_ action: @escaping @Sendable () -> Void) {
            unknownOutcomeActions.add(action)
        }

        /// The transaction's connection, for the caller's own statements in the same transaction. A planned
        /// transaction has none: it throws ``NeedsTransaction``, and the command runs in a real one instead.
        public var connection: PostgresConnection {
            get throws {
                guard let live else { throw NeedsTransaction() }
                return live
            }
        }

        /// The streams it appended to (a repeated batch, stored once already, does not count).
        var appendedStreams: Set<StreamName> { appendedTo.withLock { $0 } }

        /// What a planned transaction recorded.
        var plannedWrites: PlannedWrites? { live == nil ? planned.withLock { $0 } : nil }

        /// Runs `action` once the transaction has committed; never if it rolls back. For what may only
        /// remember what is durable, such as a cache of the states the transaction read and wrote.
        public func afterCommit(_ action: @escaping @Sendable () -> Void) {
            commitActions.withLock { $0.append(action) }
        }

        func committed() {
            for action in commitActions.withLock({ actions in defer { actions = [] }; return actions }) { action() }
        }

        /// ``EventStore/append(_:to:expectedVersion:)``, inside this transaction.
        ///
        /// Planned, it is recorded (an exact expected version only) and answered as it will be written: the
        /// version is known, and the positions are placeholders that ``PlannedWrites`` replaces in the reply.
        @discardableResult
        public func append(_ events: [NewEvent], to stream: StreamName, expectedVersion: ExpectedVersion) async throws -> AppendResult {
            let statement = try AppendEvents(events, to: stream, expectedVersion: expectedVersion)
            if live == nil {
                guard case .exact(let version) = expectedVersion else { throw NeedsTransaction() }
                appendedTo.withLock { _ = $0.insert(stream) }
                return planned.withLock { $0.append(statement, after: version) }
            }
            return try await withSpan("append \(stream.category)") { span in
                span.attributes["shop.events"] = events.count
                let result = try await EventStore.runAppend(stream: stream, expectedVersion: expectedVersion) {
                    try await EventStore.all(connection.execute(statement, logger: logger))
                }
                if !result.wasDuplicate { appendedTo.withLock { _ = $0.insert(stream) } }
                return result
            }
        }

        /// Takes the append locks of `streams` until the transaction ends, in name order (so that two
        /// transactions locking the same streams cannot deadlock). Meanwhile nobody else can append to them,
        /// and what this transaction reads of them afterwards stays true until it commits.
        public func lock(_ streams: [StreamName]) async throws {
            let names = Set(streams).sorted().map(\.rawValue)
            guard !names.isEmpty else { return }
            if live == nil { return planned.withLock { for name in names { $0.lock(name) } } }
            try await connection.run("SELECT lock_streams(\(names))", logger: logger)
        }

        /// Calls `function`, a SQL function of the context's own tables that takes one `jsonb` argument, with
        /// `argument` (JSON text): for what a command writes besides events (a saga's row), in its transaction.
        /// Planned, the call is recorded, and made by the planned statement after the appends.
        public func call(_ function: String, with argument: String) async throws {
            guard !function.isEmpty, function.utf8.allSatisfy({ $0 == UInt8(ascii: "_") || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) }) else {
                preconditionFailure("'\(function)' is not the name of one of the context's SQL functions")
            }
            if live == nil { return planned.withLock { $0.call(function, with: argument) } }
            try await connection.run("SELECT \(unescaped: function)(\(argument)::jsonb)", logger: logger)
        }

        /// ``EventStore/readStream(_:from:limit:)``, inside this transaction.
        ///
        /// Planned, nothing is read: the stream is taken to end before `version`, which the planned writes check.
        public func readStream(_ stream: StreamName, from version: Int64 = 1, limit: Int = .max) async throws -> [RecordedEvent] {
            if live == nil { return planned.withLock { $0.read(stream.rawValue, at: version - 1, locking: false) } }
            return try await EventStore.all(connection.execute(ReadStream(stream: stream, from: version, limit: limit), logger: logger))
        }

        /// Takes the stream's append lock (see ``lock(_:)``), then reads its events from `version` on, in one
        /// round trip: what a command decides on stays true until the transaction ends.
        ///
        /// Locks taken one read after another are taken in the order of the reads: a command that locks several
        /// streams takes them all first with ``lock(_:)`` (taking a lock it holds again costs nothing more).
        public func readStreamLocked(_ stream: StreamName, from version: Int64 = 1) async throws -> [RecordedEvent] {
            if live == nil { return planned.withLock { $0.read(stream.rawValue, at: version - 1, locking: true) } }
            return try await EventStore.all(connection.execute(ReadStreamLocked(stream: stream, from: version), logger: logger))
        }
    }

    private static func runAppend(
        stream: StreamName, expectedVersion: ExpectedVersion, execute: () async throws -> [AppendEvents.Row]
    ) async throws -> AppendResult {
        let outcome: AppendEvents.Row?
        do {
            outcome = try await execute().last
        } catch let error as PSQLError where error.sqlState == "SE001" {
            throw EventStoreError.eventIDConflict(stream: stream)
        }
        switch outcome {
        case let (kind, version, transaction?, first?, last?)? where kind == "appended" || kind == "duplicate":
            return AppendResult(
                streamVersion: version,
                firstPosition: Position(transactionID: transaction, globalPosition: first),
                lastPosition: Position(transactionID: transaction, globalPosition: last),
                wasDuplicate: kind == "duplicate")
        case let ("wrong_version", actual, _, _, _)?:
            throw WrongExpectedVersion(stream: stream, expected: expectedVersion, actual: actual)
        case ("id_conflict", _, _, _, _)?:
            throw EventStoreError.eventIDConflict(stream: stream)
        default:
            throw EventStoreError.unexpectedResponse("append_events answered \(outcome.map { "\($0)" } ?? "nothing")")
        }
    }

    // MARK: Reading

    static let columns = """
        global_position, transaction_id, event_id, stream_id, stream_version, event_type, schema_version, payload, metadata, recorded_at
        """
    static let columnsWithoutMetadata = """
        global_position, transaction_id, event_id, stream_id, stream_version, event_type, schema_version, payload, '{}'::jsonb, recorded_at
        """

    /// The events of `stream` from `version` on (1: from its first event), oldest first.
    public func readStream(_ stream: StreamName, from version: Int64 = 1, limit: Int = .max) async throws -> [RecordedEvent] {
        try await pooled("a read of \(stream)") { client in
            try await Self.all(client.execute(ReadStream(stream: stream, from: version, limit: limit), logger: self.logger))
        }
    }

    /// The last `count` events of `stream`, newest first.
    public func readStreamBackward(_ stream: StreamName, count: Int) async throws -> [RecordedEvent] {
        try await pooled("a read of \(stream)") { client in try await Self.collect(client.query("""
            SELECT \(unescaped: Self.columns) FROM events
            WHERE stream_id = \(stream.rawValue)
            ORDER BY stream_version DESC LIMIT \(Int64(clamping: count))
            """, logger: self.logger)) }
    }

    /// The stream's version: the number of events in it (0 for a stream without events).
    public func streamVersion(_ stream: StreamName) async throws -> Int64 {
        try await pooled("a stream's version") { client in
            let rows = try await client.query(
                "SELECT coalesce(max(stream_version), 0) FROM events WHERE stream_id = \(stream.rawValue)", logger: self.logger)
            for try await version in rows.decode(Int64.self) { return version }
            return 0
        }
    }

    /// Up to `limit` events after `position`, in commit order, from transactions that have all finished.
    ///
    /// Only events of transactions older than the oldest transaction of this database still running are
    /// returned, so an event that commits later always comes after the last one returned: a reader that
    /// continues from the last position it got never skips an event. While a transaction of this database
    /// stays open, readers wait at its events, even when later transactions have already committed; one of
    /// another database holds nothing back (see ``readable(pastOtherDatabases:)``).
    ///
    /// - Parameter types: only events of these types (all when `nil`).
    /// - Parameter metadata: `false` leaves the events' metadata out (``RecordedEvent/metadata`` is empty).
    public func readAll(after position: Position, limit: Int = 1000, types: [String]? = nil, metadata: Bool = true) async throws -> [RecordedEvent] {
        try await pooled("a read of all events") { client in try await Self.collect(client.query("""
            SELECT \(unescaped: metadata ? Self.columns : Self.columnsWithoutMetadata) FROM events
            WHERE (transaction_id, global_position) > (\(position.transactionID), \(position.globalPosition))
              AND \(unescaped: Self.readable(pastOtherDatabases: "true"))
              AND (\(types)::text[] IS NULL OR event_type = ANY (\(types)::text[]))
            ORDER BY transaction_id, global_position
            LIMIT \(Int64(clamping: limit))
            """, logger: self.logger)) }
    }

    /// ``readAll(after:limit:types:metadata:)``, and in the same round trip, whether events after the last one
    /// returned (or after `position`, when none is) are stored but not yet readable (see ``isHeldBack(after:)``):
    /// what a subscriber needs to know to decide how long to wait before it looks again.
    ///
    /// A subscriber runs it at every wake-up, so it is a prepared statement (planned once per connection, not at
    /// every call, which cost more than running it) and one plain index scan: events in commit order, each with
    /// whether it is readable. The readable ones come first (they are the older transactions); any after them
    /// are held back, and only say so (a few rows, while transactions are in flight, read again later).
    ///
    /// - Parameter pastOtherDatabases: also read what only transactions of other databases hold back (see
    ///   ``readable(pastOtherDatabases:)``); it costs a look at the server's sessions when something is held back,
    ///   so a subscriber asks for it only once it has been held back for a moment.
    func readAllOrHeldBack(
        after position: Position, limit: Int, metadata: Bool, pastOtherDatabases: Bool = false
    ) async throws -> (events: [RecordedEvent], heldBack: Bool) {
        let rows = try await pooled("a read of all events") { client in
            metadata
                ? try await Self.all(client.execute(
                    ReadAllInCommitOrder<WithMetadata>(after: position, limit: limit, pastOtherDatabases: pastOtherDatabases), logger: self.logger))
                : try await Self.all(client.execute(
                    ReadAllInCommitOrder<WithoutMetadata>(after: position, limit: limit, pastOtherDatabases: pastOtherDatabases), logger: self.logger))
        }
        var events: [RecordedEvent] = []
        for (event, readable) in rows {
            guard readable else { return (events, true) }
            events.append(event)
        }
        return (events, false)
    }

    /// The SQL condition that an event (a row of `events`) is readable: its transaction is older than every
    /// transaction of this database still running, so nothing can commit behind it.
    ///
    /// The snapshot's xmin (the oldest transaction running in the whole cluster) answers at once for almost every
    /// event. Only an event at or past it asks `readable_horizon()` (`Migrations/eventstore/0005_readable_horizon.sql`),
    /// which leaves out the transactions of other databases: a transaction left open in another database must not
    /// hold this one's readers back. That looks at the server's sessions (about 0.3 ms), once per statement (an
    /// uncorrelated sub-select runs once, when first needed), and only when `pastOtherDatabases` is true (SQL text:
    /// `true`, or a parameter).
    static func readable(pastOtherDatabases: String) -> String {
        "CASE WHEN transaction_id < pg_snapshot_xmin(pg_current_snapshot())::text::bigint THEN true "
            + "WHEN \(pastOtherDatabases) THEN transaction_id < (SELECT readable_horizon()) ELSE false END"
    }

    /// The session of this database whose open transaction holds readers of all events back.
    public struct HoldingBack: Sendable, CustomStringConvertible {
        public let pid: Int
        public let state: String
        public let seconds: Double
        public let application: String

        public var description: String {
            let application = application.isEmpty ? "" : ", application '\(application)'"
            return "a transaction open for \(Int(seconds)) s (PostgreSQL session \(pid), \(state)\(application))"
        }
    }

    /// The session of this database whose open transaction holds readers of all events back, if one does: what
    /// readiness and the logs name when views stop following the store (a session left idle in a transaction is
    /// the usual culprit).
    public func holdingBack() async throws -> HoldingBack? {
        try await pooled("a look at the sessions") { client in
            let rows = try await client.query(
                "SELECT pid, coalesce(state, ''), coalesce(transaction_seconds, 0), coalesce(application_name, '') FROM holding_back_readers()",
                logger: self.logger)
            for try await (pid, state, seconds, application) in rows.decode((Int, String, Double, String).self) {
                return HoldingBack(pid: pid, state: state, seconds: seconds, application: application)
            }
            return nil
        }
    }

    /// Whether events after `position` are stored but not yet readable, because a transaction older than
    /// theirs is still open (in this database: see ``readable(pastOtherDatabases:)``).
    public func isHeldBack(after position: Position) async throws -> Bool {
        try await pooled("a look for held-back events") { client in
        let rows = try await client.query("""
            SELECT EXISTS (SELECT 1 FROM events
                WHERE (transaction_id, global_position) > (\(position.transactionID), \(position.globalPosition)))
            """, logger: self.logger)
        for try await exists in rows.decode(Bool.self) { return exists }
        return false
        }
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

    /// The position of the last committed event, readable yet or not (an older transaction still open holds
    /// it back from readers): where a reader will stand once it has read everything committed so far.
    public func lastCommittedPosition() async throws -> Position {
        try await pooled("a look for the last position") { client in
        let rows = try await client.query("""
            SELECT transaction_id, global_position FROM events ORDER BY transaction_id DESC, global_position DESC LIMIT 1
            """, logger: self.logger)
        for try await (transaction, position) in rows.decode((Int64, Int64).self) {
            return Position(transactionID: transaction, globalPosition: position)
        }
        return .start
        }
    }

    /// How many committed events come after `position`, and when the oldest of them was recorded: how far
    /// behind a reader at `position` is.
    public func backlog(after position: Position) async throws -> (events: Int, oldest: Date?) {
        try await pooled("a count of the backlog") { client in
        let rows = try await client.query("""
            SELECT count(*), min(recorded_at) FROM events
            WHERE (transaction_id, global_position) > (\(position.transactionID), \(position.globalPosition))
            """, logger: self.logger)
        for try await (count, oldest) in rows.decode((Int, Date?).self) { return (count, oldest) }
        return (0, nil)
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

    /// The position of the last event committed so far (``Position/start`` for an empty store): where a
    /// reader that has read everything stands. Events of transactions still open are not counted.
    public func headPosition() async throws -> Position {
        try await pooled("a look for the head") { client in
        let rows = try await client.query("""
            SELECT transaction_id, global_position FROM events
            WHERE transaction_id < (SELECT readable_horizon())
            ORDER BY transaction_id DESC, global_position DESC LIMIT 1
            """, logger: self.logger)
        for try await (transaction, position) in rows.decode((Int64, Int64).self) {
            return Position(transactionID: transaction, globalPosition: position)
        }
        return .start
        }
    }

    /// Every element of `rows`.
    static func all<Rows: AsyncSequence>(_ rows: Rows) async throws -> [Rows.Element] {
        var all: [Rows.Element] = []
        for try await row in rows { all.append(row) }
        return all
    }

    static func collect(_ rows: PostgresRowSequence) async throws -> [RecordedEvent] {
        var events: [RecordedEvent] = []
        for try await row in rows { events.append(try event(row)) }
        return events
    }

    /// An event from a row of ``columns``.
    static func event(_ row: PostgresRow) throws -> RecordedEvent {
        event(try row.decode((Int64, Int64, UUID, String, Int64, String, Int32, String, String, Date).self))
    }

    static func event(_ columns: (Int64, Int64, UUID, String, Int64, String, Int32, String, String, Date)) -> RecordedEvent {
        let (position, transaction, id, stream, version, type, schemaVersion, payload, metadata, recordedAt) = columns
        return RecordedEvent(
            id: id,
            stream: StreamName(stored: stream),
            streamVersion: version,
            position: Position(transactionID: transaction, globalPosition: position),
            type: type,
            schemaVersion: Int(schemaVersion),
            payload: Data(payload.utf8),
            metadataJSON: Data(metadata.utf8),
            recordedAt: recordedAt)
    }

    // MARK: Wake-ups

    func appended(to streams: Set<StreamName>) {
        appendedHere.signal()
        eventsAvailable.signal()
        for signal in streamSignals.withLock({ watched in streams.compactMap { watched[$0]?.signal } }) { signal.signal() }
    }

    /// Events may have been appended by another process, to any stream: wakes every waiter.
    private func announced() {
        eventsAvailable.signal()
        for signal in streamSignals.withLock({ $0.values.map(\.signal) }) { signal.signal() }
    }

    /// Runs `body` with a signal that is bumped whenever events may have been appended to `stream`: by an append of
    /// this process to it, or by whatever another process announces (an announcement does not name its streams).
    ///
    /// For a waiter on one stream (an order's outcome), which ``eventsAvailable`` would wake at every append of
    /// every stream: with many waiting, each append cost a read per waiter.
    public func watching<Result>(_ stream: StreamName, _ body: (ChangeSignal) async throws -> Result) async rethrows -> Result {
        let signal = streamSignals.withLock { watched in
            let signal = watched[stream]?.signal ?? ChangeSignal()
            watched[stream] = (signal, (watched[stream]?.watchers ?? 0) + 1)
            return signal
        }
        defer {
            streamSignals.withLock { watched in
                guard let entry = watched[stream] else { return }
                watched[stream] = entry.watchers > 1 ? (entry.signal, entry.watchers - 1) : nil
            }
        }
        return try await body(signal)
    }

    /// Holds a connection that LISTENs for appends of every process and wakes this process's subscribers.
    /// Reconnects after a failure; subscribers poll meanwhile.
    private func listenForAppends() async {
        while !Task.isCancelled {
            do {
                try await client.withConnection { connection in
                    try await connection.listen(on: Self.announcementChannel) { notifications in
                        // Anything appended while nobody listened would otherwise wait for the next poll.
                        announced()
                        for try await notification in notifications where notification.payload != announcer { announced() }
                    }
                }
            } catch {
                if Task.isCancelled { return }
                logger.warning("listening for appends failed; subscribers poll until it is back",
                               metadata: ["error": "\(describe(error))"])
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }

    /// Announces this process's appends to other processes with a NOTIFY sent after they commit.
    ///
    /// Not a NOTIFY inside the appending transaction: PostgreSQL commits notifying transactions one at a
    /// time (a lock held through the commit's flush), which would undo group commit for concurrent writers.
    /// And not one per append either: a NOTIFY is a statement of its own, which costs the server about as
    /// much as a small append. So announcements are throttled to one per `announceInterval` (an append
    /// after a quiet spell goes out at once), each covering every append before it. `bin/bench append`
    /// measures both choices. A process that dies between its commit and its announcement costs other
    /// processes' subscribers at most one poll interval.
    private func announceAppends() async {
        let interval = configuration.announceInterval
        var seen = appendedHere.generation
        var lastSent = ContinuousClock.now - interval
        while !Task.isCancelled {
            await appendedHere.wait(past: seen)
            let next = lastSent + interval
            if ContinuousClock.now < next {
                try? await Task.sleep(until: next, clock: .continuous)
            }
            if Task.isCancelled { return }
            seen = appendedHere.generation
            lastSent = ContinuousClock.now
            do {
                let announcer = announcer
                try await pooled("an announcement") { client in
                    try await client.run("SELECT pg_notify(\(Self.announcementChannel), \(announcer))", logger: self.logger)
                }
            } catch {
                if Task.isCancelled { return }
                logger.debug("announcing appends failed", metadata: ["error": "\(describe(error))"])
            }
        }
    }
}

// MARK: Prepared statements

/// Which columns ``ReadAllInCommitOrder`` reads: with the events' metadata or without.
protocol MetadataColumns: Sendable { static var columns: String { get } }
enum WithMetadata: MetadataColumns { static var columns: String { EventStore.columns } }
enum WithoutMetadata: MetadataColumns { static var columns: String { EventStore.columnsWithoutMetadata } }

/// Events after a position in commit order, each with whether it is readable yet (its transaction is older than
/// the oldest one running): ``EventStore/readAllOrHeldBack(after:limit:metadata:)``.
struct ReadAllInCommitOrder<Columns: MetadataColumns>: PostgresPreparedStatement {
    static var name: String { "read_all_in_commit_order_\(Columns.self == WithMetadata.self ? "with" : "without")_metadata" }
    static var sql: String {
        """
        SELECT \(Columns.columns), \(EventStore.readable(pastOtherDatabases: "$4")) FROM events
        WHERE (transaction_id, global_position) > ($1, $2)
        ORDER BY transaction_id, global_position LIMIT $3
        """
    }
    typealias Row = (RecordedEvent, Bool)

    let after: Position
    let limit: Int
    let pastOtherDatabases: Bool

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 4)
        bindings.append(after.transactionID)
        bindings.append(after.globalPosition)
        bindings.append(Int64(clamping: limit))
        bindings.append(pastOtherDatabases)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row {
        let columns = try row.decode((Int64, Int64, UUID, String, Int64, String, Int32, String, String, Date, Bool).self)
        return (EventStore.event((columns.0, columns.1, columns.2, columns.3, columns.4, columns.5, columns.6, columns.7, columns.8, columns.9)),
                columns.10)
    }
}

/// A stream's events from a version on: ``EventStore/readStream(_:from:limit:)``.
struct ReadStream: PostgresPreparedStatement {
    static let sql = """
        SELECT \(EventStore.columns) FROM events
        WHERE stream_id = $1 AND stream_version >= $2
        ORDER BY stream_version LIMIT $3
        """
    typealias Row = RecordedEvent

    let stream: StreamName, from: Int64, limit: Int

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 3)
        bindings.append(stream.rawValue)
        bindings.append(from)
        bindings.append(Int64(clamping: limit))
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row { try EventStore.event(row) }
}

/// A stream's events from a version on, once its append lock is taken: ``EventStore/Transaction/readStreamLocked(_:from:)``.
struct ReadStreamLocked: PostgresPreparedStatement {
    static let sql = "SELECT \(EventStore.columns) FROM read_stream_locked($1, $2)"
    typealias Row = RecordedEvent

    let stream: StreamName, from: Int64

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 2)
        bindings.append(stream.rawValue)
        bindings.append(from)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row { try EventStore.event(row) }
}

/// One append, checked and encoded: a call of `append_events` (`Migrations/eventstore/0001_event_store.sql`).
struct AppendEvents: PostgresPreparedStatement {
    static let sql = """
        SELECT outcome, stream_version, transaction_id, first_position, last_position
        FROM append_events($1, $2, $3, $4, $5, $6, $7)
        """
    typealias Row = (String, Int64, Int64?, Int64?, Int64?)

    let stream: StreamName
    let expectedVersion: Int64?
    let ids: [UUID], types: [String], versions: [Int32], payloads: [String], metadata: [String]

    init(_ events: [NewEvent], to stream: StreamName, expectedVersion: ExpectedVersion) throws {
        guard !events.isEmpty else { throw EventStoreError.invalidAppend("no events to append to \(stream)") }
        guard Set(events.lazy.map(\.id)).count == events.count else {
            throw EventStoreError.invalidAppend("the same event id appears twice in one append to \(stream)")
        }
        if case .exact(let version) = expectedVersion, version < 0 {
            throw EventStoreError.invalidAppend("expected version \(version) is negative")
        }
        let encoder = JSONEncoder.eventPayloads
        var ids: [UUID] = [], types: [String] = [], versions: [Int32] = [], payloads: [String] = [], metadata: [String] = []
        ids.reserveCapacity(events.count)
        types.reserveCapacity(events.count)
        versions.reserveCapacity(events.count)
        payloads.reserveCapacity(events.count)
        metadata.reserveCapacity(events.count)
        for event in events {
            guard !event.type.isEmpty else { throw EventStoreError.invalidAppend("an event to \(stream) has no type") }
            guard event.schemaVersion >= 1, let version = Int32(exactly: event.schemaVersion) else {
                throw EventStoreError.invalidAppend("schema version \(event.schemaVersion) of \(event.type) is not positive")
            }
            ids.append(event.id)
            types.append(event.type)
            versions.append(version)
            payloads.append(String(decoding: event.payload, as: UTF8.self))
            metadata.append(String(decoding: try encoder.encode(event.metadata), as: UTF8.self))
        }
        self.stream = stream
        self.expectedVersion = expectedVersion.sqlValue
        (self.ids, self.types, self.versions, self.payloads, self.metadata) = (ids, types, versions, payloads, metadata)
    }

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 7)
        bindings.append(stream.rawValue)
        bindings.append(expectedVersion)
        bindings.append(ids)
        bindings.append(types)
        bindings.append(versions)
        bindings.append(payloads)
        bindings.append(metadata)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
}
