import Foundation
import Logging
import PostgresNIO

extension EventStore {
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

    /// How far behind a reader at `position` is: how many events come after it, and when the oldest of them was
    /// recorded. In bounded time whatever the backlog (readiness probes and metrics scrapes ask it, and must not slow
    /// down when a view falls far behind): up to `exactUpTo` events are counted (an index scan of at most that many
    /// entries); beyond, the number is an estimate, the distance between the reader's global position and the
    /// store's highest (`exact` false), which counts the positions that rolled-back transactions used too.
    public func backlog(after position: Position, exactUpTo limit: Int = 10_000) async throws -> Backlog {
        try await pooled("a look at the backlog") { client in
        let rows = try await client.query("""
            SELECT
              (SELECT count(*) FROM (SELECT 1 FROM events
                                     WHERE (transaction_id, global_position) > (\(position.transactionID), \(position.globalPosition))
                                     ORDER BY transaction_id, global_position LIMIT \(limit + 1)) AS counted),
              (SELECT recorded_at FROM events
               WHERE (transaction_id, global_position) > (\(position.transactionID), \(position.globalPosition))
               ORDER BY transaction_id, global_position LIMIT 1),
              (SELECT coalesce(max(global_position), 0) FROM events)
            """, logger: self.logger)
        for try await (counted, oldest, highest) in rows.decode((Int, Date?, Int64).self) {
            if counted <= limit { return Backlog(events: counted, exact: true, oldest: oldest) }
            return Backlog(events: max(counted, Int(clamping: highest - position.globalPosition)), exact: false, oldest: oldest)
        }
        return Backlog(events: 0, exact: true, oldest: nil)
        }
    }

    /// The events after a reader's position (see ``backlog(after:exactUpTo:)``).
    public struct Backlog: Sendable, Equatable {
        /// How many: exact when `exact`, else an estimate above the count's limit.
        public let events: Int
        public let exact: Bool
        /// When the oldest of them was recorded.
        public let oldest: Date?
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

}
