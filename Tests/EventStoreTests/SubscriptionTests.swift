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

    /// Each append of a burst wakes a live subscriber, which reads no sooner than the store's read interval after
    /// its last read: the burst comes in fewer batches than appends, and the batches at least that far apart.
    @Test(.timeLimit(.minutes(1)))
    func aBurstOfAppendsIsReadTogether() async throws {
        let interval = Duration.seconds(1)
        try await withStore(pollInterval: .seconds(120), readInterval: interval) { store, _ in
            let (batches, delivered) = AsyncStream.makeStream(of: (ids: [UUID], at: ContinuousClock.Instant).self)
            let subscriber = Task {
                for try await batch in store.subscribeToAll() { delivered.yield((batch.map(\.id), ContinuousClock.now)) }
            }
            defer { subscriber.cancel() }
            let first = event(0), burst = (1...5).map { event($0) }
            try await store.append([first], to: uniqueStream(), expectedVersion: .noStream)
            let received = try await within(.seconds(20), "the burst") {
                var received: [(ids: [UUID], at: ContinuousClock.Instant)] = []
                for await batch in batches {
                    received.append(batch)
                    // The burst starts once the first event was read.
                    if received.count == 1 {
                        for new in burst { try await store.append([new], to: uniqueStream(), expectedVersion: .noStream) }
                    }
                    if received.flatMap(\.ids).count == 1 + burst.count { break }
                }
                return received
            }
            #expect(received.flatMap(\.ids) == [first.id] + burst.map(\.id))
            #expect(received.count < 1 + burst.count, "the burst read together")
            // Reads start an interval apart; a batch arrives when its read ends, so allow for a slow first read.
            for (earlier, later) in zip(received, received.dropFirst()) {
                #expect(later.at - earlier.at > interval / 2)
            }
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
