import EventStore
import Foundation
import TestSupport
import Testing

@Suite("Subscriptions")
struct SubscriptionTests {
    @Test(.timeLimit(.minutes(1)))
    func aLiveSubscriberReceivesEventsAppendedAfterItStarted() async throws {
        // With a two-minute poll interval, only wake-ups can deliver within the test's limit.
        try await withStore(pollInterval: .seconds(120)) { store, _ in
            let old = event(0)
            try await store.append([old], to: uniqueStream(), expectedVersion: .noStream)
            let fresh = (1...5).map { event($0) }
            let subscriber = Task {
                var received: [UUID] = []
                for try await batch in store.subscribeToAll() {
                    received += batch.map(\.id)
                    if received.count == 6 { return received }
                }
                return received
            }
            for new in fresh {
                try await store.append([new], to: uniqueStream(), expectedVersion: .noStream)
            }
            let received = try await within(.seconds(20), "the live events") { try await subscriber.value }
            #expect(received == [old.id] + fresh.map(\.id))
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func anotherProcessesAppendsWakeTheSubscriberThroughNotify() async throws {
        try await withStore(pollInterval: .seconds(120)) { store, url in
            let subscriber = Task {
                for try await batch in store.subscribeToAll() { return batch.map(\.id) }
                return []
            }
            // A second store on the same database stands for another process.
            let new = event(1)
            try await withRunningStore(url) { other in
                try await other.append([new], to: uniqueStream(), expectedVersion: .noStream)
                let received = try await within(.seconds(20), "the NOTIFY wake-up") { try await subscriber.value }
                #expect(received == [new.id])
            }
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func aSubscriberRestartedFromItsCheckpointReceivesExactlyTheRemainder() async throws {
        try await withStore { store, _ in
            let stream = uniqueStream()
            let firstTen = (1...10).map { event($0) }
            for new in firstTen { try await store.append([new], to: stream, expectedVersion: .any) }

            // Handle batches of at most 4 until 6 events are done, saving the checkpoint after each batch.
            var checkpoint = Position.start
            var handled: [UUID] = []
            for try await batch in store.subscribeToAll(batchSize: 4) {
                #expect(batch.count <= 4)
                handled += batch.map(\.id)
                checkpoint = batch.last!.position
                if handled.count >= 6 { break }
            }
            #expect(handled == firstTen.prefix(handled.count).map(\.id))

            let nextFive = (11...15).map { event($0) }
            try await store.append(nextFive, to: stream, expectedVersion: .exact(10))
            let remainder = (firstTen + nextFive).dropFirst(handled.count).map(\.id)
            var resumed: [UUID] = []
            for try await batch in store.subscribeToAll(from: checkpoint, batchSize: 4) {
                resumed += batch.map(\.id)
                if resumed.count >= remainder.count { break }
            }
            #expect(resumed == remainder)
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func aSubscriptionEndsCleanlyWhenItsTaskIsCancelled() async throws {
        try await withStore(pollInterval: .seconds(120)) { store, _ in
            let started = Gate()
            let subscriber = Task {
                var batches = 0
                await started.open()
                for try await _ in store.subscribeToAll() { batches += 1 }
                return batches  // reached only when the sequence ends
            }
            await started.wait()
            subscriber.cancel()
            let batches = try await within(.seconds(10), "the cancelled subscription to end") { try await subscriber.value }
            #expect(batches == 0)
        }
    }
}
