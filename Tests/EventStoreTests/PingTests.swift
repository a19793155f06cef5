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
