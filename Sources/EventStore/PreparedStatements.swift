import Foundation
import PostgresNIO

// The statements the store runs most, prepared once per connection.

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
