import Essentials
import EventStore
import Foundation
import TestSupport
import Testing

@Suite("Appending and reading streams")
struct AppendTests {
    @Test func appendsAndReadsAStreamForwardAndBackward() async throws {
        try await withStore { store, _ in
            let stream = uniqueStream()
            let metadata = EventMetadata(correlationID: "corr-1", causationID: "cause-1",
                                         traceparent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", actor: "customer:42")
            let first = try await store.append([event(1, metadata: metadata), event(2)], to: stream, expectedVersion: .noStream)
            #expect(first.streamVersion == 2)
            #expect(first.firstPosition < first.lastPosition)
            let second = try await store.append([event(3)], to: stream, expectedVersion: .exact(2))
            #expect(second.streamVersion == 3)
            #expect(first.lastPosition < second.position)

            let events = try await store.readStream(stream)
            #expect(events.map(\.streamVersion) == [1, 2, 3])
            #expect(events.map { String(decoding: $0.payload, as: UTF8.self) } == [#"{"value": 1}"#, #"{"value": 2}"#, #"{"value": 3}"#])
            #expect(events[0].metadata == metadata)
            // Read in commit order with or without the metadata (for readers that never look at it).
            let all = try await readEverything(store).filter { $0.stream == stream }
            #expect(all.first?.metadata == metadata)
            let stored = try #require(all.first)
            let before = Position(transactionID: stored.position.transactionID, globalPosition: stored.position.globalPosition - 1)
            let bare = try await store.readAll(after: before, limit: 1, metadata: false)
            #expect(bare.first?.id == stored.id && bare.first?.metadata == EventMetadata() && bare.first?.payload == stored.payload)
            #expect(events[0].type == "test.happened" && events[0].schemaVersion == 1)
            #expect(events.allSatisfy { $0.stream == stream })
            #expect(try await store.readStream(stream, from: 2).map(\.streamVersion) == [2, 3])
            #expect(try await store.readStream(stream, from: 2, limit: 1).map(\.streamVersion) == [2])
            #expect(try await store.readStreamBackward(stream, count: 2).map(\.streamVersion) == [3, 2])
            #expect(try await store.streamVersion(stream) == 3)
            #expect(try await store.streamVersion(uniqueStream()) == 0)
            #expect(try await store.readStream(uniqueStream()).isEmpty)
        }
    }

    @Test func expectedVersionsAreEnforced() async throws {
        try await withStore { store, _ in
            let stream = uniqueStream()
            try await store.append([event(1)], to: stream, expectedVersion: .any)
            await #expect(throws: WrongExpectedVersion(stream: stream, expected: .noStream, actual: 1)) {
                try await store.append([event(2)], to: stream, expectedVersion: .noStream)
            }
            await #expect(throws: WrongExpectedVersion(stream: stream, expected: .exact(0), actual: 1)) {
                try await store.append([event(2)], to: stream, expectedVersion: .exact(0))
            }
            await #expect(throws: WrongExpectedVersion(stream: stream, expected: .exact(5), actual: 1)) {
                try await store.append([event(2)], to: stream, expectedVersion: .exact(5))
            }
            #expect(try await store.append([event(2)], to: stream, expectedVersion: .any).streamVersion == 2)
            #expect(try await store.readStream(stream).count == 2)
        }
    }

    @Test func ofTwoWritersWithTheSameExpectedVersionExactlyOneWins() async throws {
        try await withStore { store, _ in
            for round in 0..<20 {
                let stream = uniqueStream()
                try await store.append([event(0)], to: stream, expectedVersion: .noStream)
                let outcomes = try await withThrowingTaskGroup(of: Result<AppendResult, WrongExpectedVersion>.self) { group in
                    for writer in 0..<2 {
                        group.addTask {
                            do {
                                return .success(try await store.append([event(writer)], to: stream, expectedVersion: .exact(1)))
                            } catch let conflict as WrongExpectedVersion {
                                return .failure(conflict)
                            }
                        }
                    }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
                let wins = outcomes.compactMap { try? $0.get() }
                let conflicts = outcomes.compactMap { if case .failure(let conflict) = $0 { conflict } else { nil } }
                #expect(wins.count == 1, "round \(round)")
                #expect(wins.first?.streamVersion == 2)
                #expect(conflicts == [WrongExpectedVersion(stream: stream, expected: .exact(1), actual: 2)], "round \(round)")
                #expect(try await store.readStream(stream).count == 2)
            }
        }
    }

    @Test func aRepeatedBatchIsStoredOnceAndAnswersAsTheFirstTime() async throws {
        try await withStore { store, _ in
            let stream = uniqueStream()
            let batch = [event(1), event(2)]
            let first = try await store.append(batch, to: stream, expectedVersion: .noStream)
            try await store.append([event(3)], to: stream, expectedVersion: .exact(2))
            // Retried with the version it was first sent with: still the first answer, nothing written.
            let retry = try await store.append(batch, to: stream, expectedVersion: .noStream)
            #expect(retry.wasDuplicate && !first.wasDuplicate)
            #expect(retry.streamVersion == first.streamVersion)
            #expect(retry.firstPosition == first.firstPosition && retry.lastPosition == first.lastPosition)
            #expect(try await store.readStream(stream).count == 3)
            #expect(try await readEverything(store).count == 3)
        }
    }

    @Test(arguments: [ExpectedVersion.any, .exact(1)])
    func theSameBatchSentByManyWritersAtOnceIsStoredOnce(expected: ExpectedVersion) async throws {
        try await withStore { store, _ in
            let stream = uniqueStream()
            try await store.append([event(0)], to: stream, expectedVersion: .noStream)
            let batch = [event(1), event(2), event(3)]
            let results = try await withThrowingTaskGroup(of: AppendResult.self) { group in
                for _ in 0..<8 {
                    group.addTask { try await store.append(batch, to: stream, expectedVersion: expected) }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(results.filter { !$0.wasDuplicate }.count == 1)
            #expect(Set(results.map(\.lastPosition)).count == 1 && Set(results.map(\.streamVersion)) == [4])
            #expect(try await store.readStream(stream).map(\.id) == [try await store.readStream(stream).first!.id] + batch.map(\.id))
        }
    }

    @Test func storedEventIDsThatAreNotTheSameBatchAreRefused() async throws {
        try await withStore { store, _ in
            let stream = uniqueStream(), other = uniqueStream()
            let stored = [event(1), event(2)]
            try await store.append(stored, to: stream, expectedVersion: .noStream)
            // Part of a stored batch with new events.
            await #expect(throws: EventStoreError.eventIDConflict(stream: stream)) {
                try await store.append([stored[1], event(3)], to: stream, expectedVersion: .any)
            }
            // The stored batch in another order.
            await #expect(throws: EventStoreError.eventIDConflict(stream: stream)) {
                try await store.append(stored.reversed(), to: stream, expectedVersion: .any)
            }
            // The same ids in another stream.
            await #expect(throws: EventStoreError.eventIDConflict(stream: other)) {
                try await store.append(stored, to: other, expectedVersion: .any)
            }
            #expect(try await readEverything(store).map(\.id) == stored.map(\.id))
        }
    }

    @Test func malformedAppendsAreRefusedBeforeAnythingIsWritten() async throws {
        try await withStore { store, _ in
            let stream = uniqueStream()
            await #expect(throws: EventStoreError.self) { try await store.append([], to: stream, expectedVersion: .any) }
            let id = UUID()
            await #expect(throws: EventStoreError.self) {
                try await store.append([event(1, id: id), event(2, id: id)], to: stream, expectedVersion: .any)
            }
            await #expect(throws: EventStoreError.self) {
                try await store.append([event(1, type: "")], to: stream, expectedVersion: .any)
            }
            await #expect(throws: EventStoreError.self) {
                try await store.append([event(1)], to: stream, expectedVersion: .exact(-1))
            }
            // (Through a variable: StreamName("literal") would be the string-literal initialiser, which traps.)
            let empty = "", control = "bad\nname"
            #expect(throws: EventStoreError.self) { try StreamName(empty) }
            #expect(throws: EventStoreError.self) { try StreamName(String(repeating: "x", count: 201)) }
            #expect(throws: EventStoreError.self) { try StreamName(control) }
            #expect(throws: EventStoreError.self) { try StreamName(category: "a-b", id: "1") }
            let stored = try await readEverything(store)
            #expect(stored.isEmpty)
        }
    }

    @Test func anAppendInATransactionCommitsWithTheTransactionOrNotAtAll() async throws {
        try await withStore { store, _ in
            let kept = uniqueStream(), dropped = uniqueStream()
            try await store.withTransaction { transaction in
                try await transaction.append([event(1)], to: kept, expectedVersion: .noStream)
                try await transaction.append([event(2)], to: kept, expectedVersion: .exact(1))
                #expect(try await transaction.readStream(kept).count == 2)
            }
            struct Abort: Error {}
            await #expect(throws: Abort.self) {
                try await store.withTransaction { transaction in
                    try await transaction.append([event(3)], to: dropped, expectedVersion: .noStream)
                    throw Abort()
                }
            }
            #expect(try await store.readStream(kept).count == 2)
            #expect(try await store.readStream(dropped).isEmpty)
            // Both appends of one transaction share its transaction id, so readers see them together.
            let all = try await readEverything(store)
            #expect(all.count == 2 && all[0].position.transactionID == all[1].position.transactionID)
        }
    }

    @Test func positionsPrintAndParse() throws {
        let position = Position(transactionID: 7391, globalPosition: 1204)
        #expect(position.description == "7391-1204")
        #expect(Position("7391-1204") == position)
        #expect(Position("7391") == nil && Position("a-b") == nil && Position("-1-2") == nil && Position("1-2-3") == nil)
        #expect(Position(transactionID: 1, globalPosition: 9) < Position(transactionID: 2, globalPosition: 1))
    }
}
