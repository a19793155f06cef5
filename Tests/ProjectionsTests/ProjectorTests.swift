import Essentials
import EventStore
import Foundation
import GRDB
import Logging
@testable import Projections
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
            let directory = scratchViews(), a = uniqueStream("a"), b = uniqueStream("b")
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
            let incremental = try Projector(StreamTally(), store: store, directory: scratchViews(), batchSize: 7, logger: TestDatabase.logger)
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
            let rebuilt = try Projector(StreamTally(), store: store, directory: scratchViews(), batchSize: 500, logger: TestDatabase.logger)
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
    func aNewVersionIsRebuiltWhileTheOldViewServes() async throws {
        try await withStore { store, _ in
            let directory = scratchViews(), stream = uniqueStream()
            try await store.append([event(1), event(2)], to: stream, expectedVersion: .noStream)
            let v1 = try Projector(StreamTally(), store: store, directory: directory, logger: TestDatabase.logger)
            try await catchUp(v1, store)
            let v2 = try Projector(StreamTally(version: 2), store: store, directory: directory, logger: TestDatabase.logger)
            // Until it has run, the old view serves.
            #expect(v2.generation == 1 && v2.position == v1.position)
            #expect(try await tally(v2) == [stream.rawValue: [2, 3]])
            await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await v2.run() }
                defer { group.cancelAll() }
                #expect(await v2.wait(for: { $0.generation == 2 }, timeout: .seconds(30)))
            }
            #expect(v2.generation == 2)
            #expect(try await v2.read { try Int.fetchOne($0, sql: "SELECT version FROM projection_state") } == 2)
            #expect(try await tally(v2) == [stream.rawValue: [2, 3]])
        }
    }

    @Test(.timeLimit(.minutes(2)))
    func aRebuildSwapsInANewFileWhileReadersAndTheProjectorCarryOn() async throws {
        try await withStore { store, _ in
            let directory = scratchViews()
            let streams = (0..<4).map { _ in uniqueStream() }
            for round in 0..<50 {
                for stream in streams { try await store.append([event(round)], to: stream, expectedVersion: .exact(Int64(round))) }
            }
            let live = try Projector(StreamTally(), store: store, directory: directory, batchSize: 10, logger: TestDatabase.logger)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await live.run() }
                #expect(await live.wait(until: try await store.lastCommittedPosition(), timeout: .seconds(30)))
                let before = try await live.contentChecksum()
                // Readers read all along; none may fail or see a partial view.
                let readers = Task {
                    var reads = 0
                    while !Task.isCancelled {
                        let rows: [String: [Int]]
                        do { rows = try await tally(live) } catch is CancellationError { break }
                        #expect(rows.count == 4 && rows.values.allSatisfy { $0[0] >= 50 })
                        reads += 1
                    }
                    return reads
                }
                // Another projector on the same folder stands for shop-admin in another process.
                let admin = try Projector(StreamTally(), store: store, directory: directory, batchSize: 10, logger: TestDatabase.logger)
                let result = try await admin.rebuild()
                #expect(result.generation == 2 && result.events == 200)
                readers.cancel()
                #expect(try await readers.value > 0)
                #expect(live.generation == 2)
                #expect(try await live.contentChecksum() == before)
                // The live projector follows into the new generation.
                try await store.append([event(1000)], to: streams[0], expectedVersion: .exact(50))
                #expect(await live.wait(until: try await store.lastCommittedPosition(), timeout: .seconds(30)))
                #expect(try await tally(live)[streams[0].rawValue] == [51, 1000 + (0..<50).reduce(0, +)])
                group.cancelAll()
            }
        }
    }

    @Test func aSecondRebuildOfTheSameViewIsRefused() async throws {
        try await withStore { store, _ in
            let projector = try Projector(StreamTally(), store: store, directory: scratchViews(), logger: TestDatabase.logger)
            let held = try projector.files.lockForRebuild()
            await #expect(throws: ViewError.rebuildRunning("stream-tally")) { try await projector.rebuild() }
            held.release()
            #expect(try await projector.rebuild().generation == 2)
        }
    }

    @Test func verifyComparesTheLiveViewWithARebuildAndCatchesADifference() async throws {
        try await withStore { store, _ in
            try await store.append([event(1), event(2)], to: uniqueStream(), expectedVersion: .noStream)
            let projector = try Projector(StreamTally(), store: store, directory: scratchViews(), logger: TestDatabase.logger)
            try await catchUp(projector, store)
            #expect(try await projector.verify().matches)
            // Somebody writes into the view behind the projector's back.
            let file = try DatabaseQueue(path: projector.files.path(projector.generation))
            try await file.write { try $0.execute(sql: "UPDATE tally SET total = total + 1") }
            let verdict = try await projector.verify()
            #expect(!verdict.matches && verdict.live != verdict.rebuilt)
        }
    }

    @Test func aPointInTimeCopyHoldsOnlyWhatHadHappenedThen() async throws {
        try await withStore { store, _ in
            let stream = uniqueStream()
            let then = try await store.append([event(1), event(2)], to: stream, expectedVersion: .noStream)
            try await store.append([event(100)], to: stream, expectedVersion: .exact(2))
            let projector = try Projector(StreamTally(), store: store, directory: scratchViews(), logger: TestDatabase.logger)
            let output = scratchViews().appendingPathComponent("then.sqlite")
            try FileManager.default.createDirectory(at: output.deletingLastPathComponent(), withIntermediateDirectories: true)
            #expect(try await projector.build(until: then.position, output: output) == then.position)
            let copy = try DatabaseQueue(path: output.path)
            let row = try copy.read { try Row.fetchOne($0, sql: "SELECT events, total FROM tally") }
            #expect(row?["events"] == 2 && row?["total"] == 3)
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func aReaderCanWaitForItsOwnWrite() async throws {
        try await withStore { store, _ in
            let projector = try Projector(StreamTally(), store: store, directory: scratchViews(), logger: TestDatabase.logger)
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

@Suite("Timestamps of views")
struct TimestampTests {
    @Test func theyAreWhatFoundationsISO8601FormatGives() {
        var dates = [Date(timeIntervalSince1970: 0), Date(timeIntervalSince1970: 951_782_400.999), Date(timeIntervalSince1970: 4_102_444_799.5)]
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2_000 { dates.append(Date(timeIntervalSince1970: Double.random(in: 0..<4_102_444_800, using: &generator))) }
        for date in dates { #expect(Timestamp.iso8601(date) == date.formatted(.iso8601), "\(date.timeIntervalSince1970)") }
    }
}
