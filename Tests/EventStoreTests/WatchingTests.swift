import EventStore
import Foundation
import TestSupport
import Testing

/// `EventStore.watching(_:_:)`: a waiter on one stream (an order's outcome) is woken by appends to that stream, in
/// a transaction, planned or not, and by other processes' announcements; not by this process's appends to others.
@Suite("Watching one stream")
struct WatchingTests {
    @Test(.timeLimit(.minutes(1)))
    func aWatcherIsWokenByItsStreamsAppendsAndByOtherProcessesNotByOtherStreams() async throws {
        try await withStore(pollInterval: .seconds(120)) { store, url in
            let watched = uniqueStream("order"), other = uniqueStream("order")
            // The listener up first: its wake-up on connecting is then behind us, and an announcement is not missed.
            await store.waitUntilListening()
            try await store.watching(watched) { appended in
                // Another process's announcement does not say which streams it appended to: every watcher wakes.
                var seen = appended.generation
                try await withRunningStore(url) { elsewhere in
                    try await elsewhere.append([event(0)], to: uniqueStream("order"), expectedVersion: .noStream)
                    await appended.wait(past: seen, timeout: .seconds(20))
                }
                #expect(appended.generation != seen, "another process's announcement did not wake the watcher")

                seen = appended.generation
                try await store.append([event(1)], to: other, expectedVersion: .noStream)
                #expect(appended.generation == seen, "an append to another stream woke the watcher")
                try await store.append([event(2)], to: watched, expectedVersion: .noStream)
                #expect(appended.generation != seen)

                seen = appended.generation
                _ = try await store.withTransaction { transaction in
                    try await transaction.append([event(3)], to: other, expectedVersion: .exact(1))
                }
                #expect(appended.generation == seen, "a transaction's append to another stream woke the watcher")
                _ = try await store.withTransaction { transaction in
                    try await transaction.append([event(4)], to: watched, expectedVersion: .exact(1))
                }
                #expect(appended.generation != seen)

                seen = appended.generation
                let planned = try await store.runPlanned({ transaction in
                    try await transaction.append([event(5)], to: watched, expectedVersion: .exact(2))
                }, write: { _, writes in ApplyPlanned(writes: writes) })
                #expect(planned != nil)
                #expect(appended.generation != seen)
            }
        }
    }
}
