import EventStore
import Foundation
import TestSupport
import Testing

@Suite("Deadlines on database calls")
struct DeadlineTests {
    /// A query sent on a connection the server has just closed is never answered by PostgresNIO: the caller is
    /// given up on at the deadline, told that the database is unavailable, and goes on.
    @Test(.timeLimit(.minutes(1)))
    func aCallThatNeverAnswersIsGivenUpAtItsDeadline() async throws {
        let started = ContinuousClock.now
        await #expect(throws: DatabaseUnavailable.self) {
            try await withDeadline(.milliseconds(200), "a query") {
                try await Task.sleep(for: .seconds(3600))  // never answers, and ignores nothing but cancellation
                return 1
            }
        }
        #expect(ContinuousClock.now - started < .seconds(5))
        #expect(try await withDeadline(.seconds(5), "a query") { 42 } == 42)
        struct Refused: Error {}
        await #expect(throws: Refused.self) { try await withDeadline(.seconds(5), "a query") { () async throws -> Int in throw Refused() } }
    }

    /// The store's calls go through it: a store whose deadline is shorter than a query answers DatabaseUnavailable.
    @Test(.timeLimit(.minutes(1)))
    func theStoresCallsHaveTheStoresDeadline() async throws {
        let url = try await TestDatabase.create()
        let store = EventStore(.init(database: url, queryDeadline: .seconds(3)), logger: TestDatabase.logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await store.run() }
            defer { group.cancelAll() }
            await store.waitUntilRunning()
            await #expect(throws: DatabaseUnavailable.self) {
                try await store.withConnection { connection in try await connection.run("SELECT pg_sleep(8)", logger: TestDatabase.logger) }
            }
            await #expect(throws: DatabaseUnavailable.self) {
                try await store.withTransaction { transaction in try await transaction.connection.run("SELECT pg_sleep(8)", logger: transaction.logger) }
            }
            // And it goes on answering (on a machine busy enough, a call may miss even this deadline: then the next one).
            _ = try await within(.seconds(30), "the store to answer again") {
                while true {
                    do { return try await store.append([event(1)], to: uniqueStream(), expectedVersion: .noStream) } catch is DatabaseUnavailable {}
                }
            }
        }
    }
}

extension DeadlineTests {
    /// A command whose transaction's outcome is unknown (here: the deadline passed while it was still open) leaves
    /// nothing of its stream kept: the service must not answer the next command from a state the store may not hold.
    @Test(.timeLimit(.minutes(1)))
    func aCommandWhoseOutcomeIsUnknownLeavesNothingKept() async throws {
        let url = try await TestDatabase.create()
        // The first command on a store with the usual deadline; the second on one whose deadline its transaction misses.
        let stream = uniqueStream("counter")
        let cache = StateCache<Counter.State>()
        _ = try await withRunningStore(url) { store in
            try await CommandHandler<Counter>(store: store, codec: Counter.codec, cache: cache).handle(.increment(by: 1), on: stream)
        }
        #expect(cache.entry(stream)?.version == 1)
        let store = EventStore(.init(database: url, queryDeadline: .seconds(5)), logger: TestDatabase.logger)
        await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await store.run() }
            defer { group.cancelAll() }
            await store.waitUntilRunning()
            let handler = CommandHandler<Counter>(store: store, codec: Counter.codec, cache: cache)
            await #expect(throws: DatabaseUnavailable.self) {
                try await store.withTransaction { transaction in
                    try await handler.handle(.increment(by: 1), on: stream, in: transaction)
                    try await transaction.connection.run("SELECT pg_sleep(12)", logger: transaction.logger)  // past the deadline
                }
            }
            #expect(cache.entry(stream) == nil)
        }
    }
}
