import EventStore
import Foundation
import PostgresNIO
import TestSupport
import Testing

@Suite("Snapshots of long streams")
struct SnapshotTests {
    static let snapshots = Snapshotting<Int>(schema: "counter.1", every: 10)

    /// The stream's snapshot of `schema` once it is at `version` (snapshots are written after the commit, off the path).
    func snapshot(_ store: EventStore, _ stream: StreamName, schema: String = "counter.1", at version: Int64) async throws {
        try await within(.seconds(10), "the snapshot at \(version)") {
            while try await store.snapshot(of: stream, schema: schema)?.version != version { try await Task.sleep(for: .milliseconds(10)) }
        }
    }

    func setSnapshot(_ store: EventStore, _ stream: StreamName, state: String) async throws {
        try await store.withConnection { connection in
            try await connection.run("UPDATE snapshots SET state = \(state)::jsonb WHERE stream_id = \(stream.rawValue)", logger: store.logger)
        }
    }

    @Test func aLongStreamIsLoadedFromItsLatestSnapshotAndTheEventsAfterIt() async throws {
        try await withStore { store, _ in
            let stream = uniqueStream("counter")
            let handler = CommandHandler<Counter>(store: store, codec: Counter.codec, snapshots: Self.snapshots)
            for _ in 1...25 { try await handler.handle(.increment(by: 1), on: stream) }
            try await snapshot(store, stream, at: 20)
            #expect(try await store.snapshot(of: stream, schema: "counter.1").map { String(decoding: $0.state, as: UTF8.self) } == "20")

            // A process that kept nothing starts from the snapshot: made to say 100, it proves it was read.
            try await setSnapshot(store, stream, state: "100")
            let restarted = CommandHandler<Counter>(store: store, codec: Counter.codec, snapshots: Self.snapshots)
            #expect(try await restarted.load(stream) == (105, 25))
            // In a transaction too, and a command decided on it goes on from there.
            let other = CommandHandler<Counter>(store: store, codec: Counter.codec, snapshots: Self.snapshots)
            let result = try await store.withTransaction { transaction in
                try await other.handle(.increment(by: 2), on: stream, in: transaction)
            }
            #expect(result.state == 107 && result.streamVersion == 26)
        }
    }

    @Test func aSnapshotOfAnotherSchemaOrThatCannotBeDecodedIsIgnoredAndTakenAgain() async throws {
        try await withStore { store, _ in
            let stream = uniqueStream("counter")
            let handler = CommandHandler<Counter>(store: store, codec: Counter.codec, snapshots: Self.snapshots)
            for _ in 1...12 { try await handler.handle(.increment(by: 1), on: stream) }
            try await snapshot(store, stream, at: 10)
            try await setSnapshot(store, stream, state: "1000")

            // The decider changed: its new schema ignores the old snapshot, folds all 12 events, and snapshots them.
            let changed = Snapshotting<Int>(schema: "counter.2", every: 10)
            #expect(try await CommandHandler<Counter>(store: store, codec: Counter.codec, snapshots: changed).load(stream) == (12, 12))
            try await snapshot(store, stream, schema: "counter.2", at: 12)
            #expect(try await store.snapshot(of: stream, schema: "counter.1") == nil)

            // A snapshot that does not decode is ignored too.
            try await setSnapshot(store, stream, state: #""not a number""#)
            #expect(try await CommandHandler<Counter>(store: store, codec: Counter.codec, snapshots: changed).load(stream) == (12, 12))
            // Without snapshots, nothing is read or written.
            #expect(try await CommandHandler<Counter>(store: store, codec: Counter.codec).load(stream) == (12, 12))
        }
    }
}
