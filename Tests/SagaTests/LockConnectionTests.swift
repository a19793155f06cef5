import Foundation
@testable import OrderingService
import TestSupport
import Testing

@Suite("The orchestrator's lock connection")
struct LockConnectionTests {
    /// A query on the lock connection that never answers (as one on a connection the server terminated may not)
    /// is given up after its limit: the caller goes on, and the connection, with its locks, is closed.
    @Test(.timeLimit(.minutes(1)))
    func aStalledQueryIsGivenUpAndItsConnectionClosed() async throws {
        let url = try await TestDatabase.create()
        try await TestDatabase.withConnection(url) { connection in
            let started = ContinuousClock.now
            await #expect(throws: FulfilmentOrchestrator.LockConnectionStalled.self) {
                try await FulfilmentOrchestrator.bounded(connection, limit: .milliseconds(200), logger: TestDatabase.logger) {
                    try await Task.sleep(for: .seconds(3600))  // a query that never answers
                    return 1
                }
            }
            #expect(ContinuousClock.now - started < .seconds(5))
            try await within(.seconds(10), "the lock connection closed") {
                while !connection.isClosed { try await Task.sleep(for: .milliseconds(10)) }  // closing is asynchronous
            }
            // An answer in time is simply the answer.
        }
        try await TestDatabase.withConnection(url) { connection in
            let answer = try await FulfilmentOrchestrator.bounded(connection, logger: TestDatabase.logger) { 42 }
            #expect(answer == 42 && !connection.isClosed)
        }
    }
}
