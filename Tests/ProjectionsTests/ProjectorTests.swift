import EventStore
import Foundation
import GRDB
import Logging
import Projections
import TestSupport
import Testing

/// Counts each stream's events and remembers the last value: enough to see an event applied twice or missed.
struct StreamTally: Projection {
    var version = 1
    let name = "stream-tally"
    let eventTypes: Set<String> = ["test.happened"]

    func createSchema(_ db: Database) throws {
        try db.execute(sql: "CREATE TABLE tally (stream TEXT PRIMARY KEY, events INTEGER NOT NULL, total INTEGER NOT NULL)")
    }

    func apply(_ event: RecordedEvent, to db: Database) throws {
        struct Payload: Decodable { let value: Int }
        let value = try JSONDecoder().decode(Payload.self, from: event.payload).value
        try db.execute(sql: """
            INSERT INTO tally (stream, events, total) VALUES (?, 1, ?)
            ON CONFLICT (stream) DO UPDATE SET events = events + 1, total = total + excluded.total
            """, arguments: [event.stream.rawValue, value])
    }
}

func scratchDirectory() -> URL { scratchViews() }

/// Runs a projector until it has applied everything committed to the store so far (which other tests' open
/// transactions may hold back for a moment: transaction ids are cluster-wide).
func catchUp(_ projector: Projector, _ store: EventStore) async throws {
    let head = try await store.lastCommittedPosition()
    await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await projector.run() }
        defer { group.cancelAll() }
        let reached = await projector.wait(until: head, timeout: .seconds(30))
        #expect(reached, "the projector reached \(head)")
    }
}

func tally(_ projector: Projector) async throws -> [String: [Int]] {
    try await projector.read { db in
        try Row.fetchAll(db, sql: "SELECT stream, events, total FROM tally").reduce(into: [:]) {
            $0[$1["stream"]] = [$1["events"], $1["total"]]
        }
    }
}

@Suite("Projector")
struct ProjectorTests {
    @Test(.timeLimit(.minutes(1)))
    func appliesEachEventOnceAndResumesFromItsCheckpoint() async throws {
        try await withStore { store, _ in
            let directory = scratchDirectory(), a = uniqueStream("a"), b = uniqueStream("b")
            try await store.append([event(1), event(2)], to: a, expectedVersion: .noStream)
            try await store.append([NewEvent(type: "test.other", payload: Data("{}".utf8))], to: b, expectedVersion: .noStream)
            let first = try Projector(StreamTally(), store: store, directory: directory, batchSize: 2, logger: TestDatabase.logger)
            try await catchUp(first, store)
            #expect(try await tally(first) == [a.rawValue: [2, 3]])

            try await store.append([event(10)], to: a, expectedVersion: .exact(2))
            try await store.append([event(5)], to: b, expectedVersion: .exact(1))
            // A new projector on the same file: it continues from the checkpoint, applying only the new events.
            let second = try Projector(StreamTally(), store: store, directory: directory, batchSize: 2, logger: TestDatabase.logger)
            #expect(second.position == first.position)
            try await catchUp(second, store)
            #expect(try await tally(second) == [a.rawValue: [3, 13], b.rawValue: [1, 5]])
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func aViewRebuiltFromScratchEqualsTheIncrementallyBuiltOne() async throws {
        try await withStore { store, _ in
            let incremental = try Projector(StreamTally(), store: store, directory: scratchDirectory(), batchSize: 7, logger: TestDatabase.logger)
            let streams = (0..<5).map { _ in uniqueStream() }
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await incremental.run() }
                for round in 0..<20 {
                    for (index, stream) in streams.enumerated() {
                        try await store.append([event(round * index)], to: stream, expectedVersion: .exact(Int64(round)))
                    }
                }
                let head = try await store.lastCommittedPosition()
                #expect(await incremental.wait(until: head, timeout: .seconds(30)))
                group.cancelAll()
            }
            let rebuilt = try Projector(StreamTally(), store: store, directory: scratchDirectory(), batchSize: 500, logger: TestDatabase.logger)
            try await catchUp(rebuilt, store)
            #expect(try await tally(rebuilt).count == 5)
            #expect(try await rebuilt.contentChecksum() == (try await incremental.contentChecksum()))
            // And the checksum does see content: one more event changes it.
            try await store.append([event(1)], to: streams[0], expectedVersion: .exact(20))
            try await catchUp(rebuilt, store)
            #expect(try await rebuilt.contentChecksum() != (try await incremental.contentChecksum()))
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func aNewVersionRebuildsTheViewFromTheFirstEvent() async throws {
        try await withStore { store, _ in
            let directory = scratchDirectory(), stream = uniqueStream()
            try await store.append([event(1), event(2)], to: stream, expectedVersion: .noStream)
            let v1 = try Projector(StreamTally(), store: store, directory: directory, logger: TestDatabase.logger)
            try await catchUp(v1, store)
            let v2 = try Projector(StreamTally(version: 2), store: store, directory: directory, logger: TestDatabase.logger)
            #expect(v2.position == .start)
            try await catchUp(v2, store)
            #expect(try await tally(v2) == [stream.rawValue: [2, 3]])
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func aReaderCanWaitForItsOwnWrite() async throws {
        try await withStore { store, _ in
            let projector = try Projector(StreamTally(), store: store, directory: scratchDirectory(), logger: TestDatabase.logger)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await projector.run() }
                defer { group.cancelAll() }
                let written = try await store.append([event(7)], to: uniqueStream(), expectedVersion: .noStream)
                #expect(await projector.wait(until: written.position, timeout: .seconds(20)))
                #expect(try await tally(projector).values.first == [1, 7])
                // A position not reached yet: waiting gives up after the timeout and says so.
                let future = Position(transactionID: written.position.transactionID + 1_000_000, globalPosition: 0)
                #expect(await projector.wait(until: future, timeout: .milliseconds(100)) == false)
            }
        }
    }
}
