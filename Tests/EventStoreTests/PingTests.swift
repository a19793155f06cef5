import Essentials
import EventStore
import Foundation
import TestSupport
import Testing

@Suite("Readiness of the event store")
struct PingTests {
    /// With the database gone, the pool keeps retrying its connections and a lease waits with it; a ping (which
    /// readiness asks, and a graceful shutdown waits on) must answer within its timeout instead.
    @Test(.timeLimit(.minutes(1)))
    func aPingFailsWithinItsTimeoutWhenTheDatabaseIsGone() async throws {
        let gone = try DatabaseURL("postgres://shop:nothing@127.0.0.1:1/none?sslmode=disable")
        let store = EventStore(.init(database: gone), logger: TestDatabase.logger)
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await store.run() }
            await store.waitUntilRunning()
            for _ in 0..<3 {
                let started = ContinuousClock.now
                await #expect(throws: (any Error).self) { try await store.ping(timeout: .milliseconds(300)) }
                #expect(ContinuousClock.now - started < .seconds(3))
            }
            group.cancelAll()
        }
    }
}

@Suite("Stopping the event store")
struct StoppingTests {
    /// `run()` ends promptly when cancelled right after an append, while the notifier is about to announce it.
    /// The pool must stop after the notifier: stopping it closes its connections, and a query whose connection
    /// closes between its lease and its write is never answered, so the store (and a graceful shutdown waiting on
    /// it) would never end.
    @Test(.timeLimit(.minutes(2)))
    func runEndsWhenCancelledWhileAnAppendIsBeingAnnounced() async throws {
        let url = try await TestDatabase.create()
        for round in 0..<60 {
            let store = EventStore(.init(database: url, maximumConnections: 4), logger: TestDatabase.logger)
            let stopped = ChangeSignal()
            let running = Task {
                await store.run()
                stopped.signal()
            }
            await store.waitUntilRunning()
            try await store.append([event(round)], to: uniqueStream(), expectedVersion: .noStream)
            // Cancelled at different moments of the announcement: before it, while it waits for a connection, during it.
            if round % 3 != 0 { try await Task.sleep(for: .microseconds(round * 50)) }
            running.cancel()
            // Not `await running.value`, which ignores cancellation: a store that never ends would hang the test
            // instead of failing it. Waiting on the signal gives up at the deadline.
            try await within(.seconds(10), "the store to stop (round \(round))") { await stopped.wait(past: 0) }
        }
    }
}
