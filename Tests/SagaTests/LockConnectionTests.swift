import EventStore
import Foundation
import Ordering
@testable import OrderingService
import PostgresNIO
import SharedKernel
import Synchronization
import ShopSupport
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

    /// The lock connection is the orchestrator's own, not the event store's pool's: `bounded` closes it when the
    /// orchestrator stops, and a pooled connection closed by its user can be handed to the next caller before the
    /// pool sees the close (a query on it is never answered: a graceful shutdown hung on that). With a pool of two
    /// connections (the store's listener keeps one), the store answers while the orchestrator runs, and after it
    /// was stopped in the middle of a poll.
    @Test(.timeLimit(.minutes(2)))
    func theLockConnectionIsNotThePoolsAndStoppingTheOrchestratorLeavesThePoolWhole() async throws {
        let url = try await TestDatabase.create(folders: ["eventstore", "ordering"])
        let store = EventStore(.init(database: url, maximumConnections: 2), logger: TestDatabase.logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await store.run() }
            defer { group.cancelAll() }
            await store.waitUntilRunning()
            for round in 0..<20 {
                let orchestrator = FulfilmentOrchestrator(
                    sagas: Sagas(store: store), steps: FulfilmentSteps(catalogURL: "http://127.0.0.1:1", billingURL: "http://127.0.0.1:1", identity: nil),
                    configuration: .init(pollInterval: .milliseconds(1)), logger: TestDatabase.logger)  // always polling
                let running = Task { try await orchestrator.run() }
                try await within(.seconds(10), "a query through the pool while the orchestrator runs (round \(round))") {
                    _ = try await store.lastCommittedPosition()
                }
                running.cancel()
                _ = await running.result
                try await within(.seconds(10), "a query through the pool once the orchestrator stopped (round \(round))") {
                    _ = try await store.lastCommittedPosition()
                }
            }
        }
    }

    /// `claim_saga`: a worker takes an instance's lock and reads it in one round trip; nobody else claims it meanwhile,
    /// and a claim of an instance that does not exist keeps no lock.
    @Test func aClaimedInstanceIsNobodyElsesAndAMissingOneKeepsNoLock() async throws {
        let (url, state) = try await Self.databaseWithInstance("o-claim")
        let store = EventStore(.init(database: url), logger: TestDatabase.logger)
        let sagas = Sagas(store: store)
        try await TestDatabase.withConnection(url) { one in
            try await TestDatabase.withConnection(url) { other in
                let claimed = try #require(try await sagas.claim("o-claim", on: one))
                #expect(claimed.id == "o-claim" && claimed.state == state)
                #expect(try await sagas.claim("o-claim", on: other) == nil, "held by the first worker")
                #expect(try await sagas.claim("o-missing", on: other) == nil)
                // The missing instance's lock was given back: the first worker can take it.
                let rows = try await one.query("SELECT pg_try_advisory_lock(\(FulfilmentOrchestrator.lockSpace), hashtext('o-missing'))",
                                               logger: TestDatabase.logger)
                var taken: [Bool] = []
                for try await lock in rows.decode(Bool.self) { taken.append(lock) }
                #expect(taken == [true])
                try await FulfilmentOrchestrator.unlock("o-claim", on: one, logger: TestDatabase.logger)
                #expect(try await sagas.claim("o-claim", on: other)?.id == "o-claim", "free once given back")
            }
        }
    }

    /// A worker changes an instance it holds without reading it first: decided on the instance as it last wrote it,
    /// and written only at that version. When the row moved on meanwhile (a customer cancelled), nothing of the
    /// stale decision is written (no timeline entry either), and it is decided again on the row as it is.
    @Test func aWorkersUpdateIsWrittenOnlyAtTheVersionItKnows() async throws {
        let (url, state) = try await Self.databaseWithInstance("o-known")
        try await withRunningStore(url) { store in
            let sagas = Sagas(store: store)
            let known = try #require(try await sagas.instance("o-known"))
            let attempt = Sagas.Attempt(step: "reserve-stock", attempt: 1, outcome: .succeeded, reason: nil, startedAt: Date())
            // At the version it knows: written as decided.
            let seen = Mutex<[Fulfilment.State]>([])
            let written = try await sagas.update("o-known", attempt: attempt, known: known) { fresh in
                seen.withLock { $0.append(fresh) }
                return Fulfilment.Transition(state: fresh)
            }
            #expect(written.version == known.version + 1 && seen.withLock { $0 } == [state])
            // Moved on: a cancellation after what the worker knows.
            let cancelled = try await sagas.update("o-known", attempt: nil) { Fulfilment.Transition(state: Fulfilment.cancel($0, reason: "changed my mind")) }
            seen.withLock { $0 = [] }
            let again = try await sagas.update("o-known", attempt: attempt, known: written) { fresh in
                seen.withLock { $0.append(fresh) }
                return Fulfilment.Transition(state: fresh)
            }
            #expect(seen.withLock { $0 } == [state, cancelled.state], "decided on what it knew, then on the row as it is")
            #expect(again.version == cancelled.version + 1 && again.state == cancelled.state)
            #expect(try await sagas.timeline("o-known").count == 2, "one entry per write, none for the stale decision")
        }
    }

    /// A fresh Ordering database holding one saga instance, due at its first step; and the instance's state.
    static func databaseWithInstance(_ id: String) async throws -> (DatabaseURL, Fulfilment.State) {
        let url = try await TestDatabase.create(folders: ["eventstore", "ordering"])
        let price = try Money(minorUnits: 1250, currency: .eur)
        let placed = Order.OrderPlaced(order: id, customer: "kim", lines: [.init(sku: "MUG-001", name: "Mug", unitPrice: price, quantity: 1)],
                                       total: price)
        let state = Fulfilment.start(placed, card: "4242424242424242").state
        try await TestDatabase.withConnection(url) { connection in
            try await connection.query("""
                INSERT INTO sagas (saga_id, status, step, state, due_at) VALUES (\(id), 'running', 'reserve-stock', \(try Sagas.json(state))::jsonb, now())
                """, logger: TestDatabase.logger)
        }
        return (url, state)
    }
}

@Suite("The orchestrator after its lock connection died")
struct LockConnectionLossTests {
    /// A checkout hands its saga to the orchestrator, which claims it on its lock connection. When that connection has
    /// died (PostgreSQL restarted), the claim fails and the orchestrator starts again; the saga must then be worked
    /// like any due one. It stayed marked as being worked, and was never looked at again: after a PostgreSQL crash,
    /// orders stayed "processing" until Ordering was restarted.
    @Test(.timeLimit(.minutes(2)))
    func aSagaWhoseClaimFailedIsWorkedOnceTheOrchestratorIsBack() async throws {
        // Polls far apart: after the first look, only a wake-up (the checkout's hand-over) makes it claim anything.
        let saga = FulfilmentOrchestrator.Configuration(retry: .init(attempts: 3, firstDelay: .milliseconds(20), maximumDelay: .milliseconds(100)),
                                                        pollInterval: .seconds(600))
        try await withShop(saga: saga) { shop in
            try await shop.product("MUG-001", stock: 10)
            // The orchestrator's lock connection is the one whose last query looked for due sagas.
            let url = try #require(shop.orderingDatabase)
            try await TestDatabase.withConnection(url) { connection in
                try await within(.seconds(20), "the lock connection to be terminated") {
                    while true {
                        let rows = try await connection.query("""
                            SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity
                            WHERE datname = current_database() AND query LIKE 'SELECT saga_id FROM sagas WHERE due_at%'
                            """, logger: TestDatabase.logger)
                        for try await count in rows.decode(Int.self) where count > 0 { return }
                        try await Task.sleep(for: .milliseconds(20))  // until its first look has run
                    }
                }
            }
            let order = try await shop.order("kim", "MUG-001")
            let done = try await shop.saga(order)
            #expect(done["status"] as? String == "completed", "\(done)")
        }
    }
}

@Suite("Readiness when sagas are not worked")
struct StalledOrchestratorTests {
    /// Sagas due for over a minute are work nobody does (a running orchestrator looks every poll): readiness says so,
    /// with how many and since when, instead of answering 200 while orders stay "processing".
    @Test(.timeLimit(.minutes(1)))
    func sagasOverdueMakeOrderingNotReady() async throws {
        let url = try await TestDatabase.create(folders: ["eventstore", "ordering"])
        try await withRunningStore(url) { store in
            // Not running: nothing works the sagas.
            let orchestrator = FulfilmentOrchestrator(
                sagas: Sagas(store: store), steps: FulfilmentSteps(catalogURL: "http://127.0.0.1:9", billingURL: "http://127.0.0.1:9", identity: nil),
                logger: TestDatabase.logger)
            #expect(await orchestrator.stall() == nil)
            try await TestDatabase.withConnection(url) { connection in
                try await connection.run("""
                    INSERT INTO sagas (saga_id, status, step, state, due_at)
                    VALUES ('o-stuck', 'running', 'reserve-stock', '{}', now() - interval '2 minutes'),
                           ('o-fresh', 'running', 'reserve-stock', '{}', now())
                    """, logger: TestDatabase.logger)
            }
            let problem = try #require(await orchestrator.stall())
            #expect(problem.status == .serviceUnavailable && problem.rule == "sagas-overdue")
            #expect(problem.detail?.hasPrefix("1 saga has been due for more than 60 s") == true, "\(problem)")
        }
    }
}
