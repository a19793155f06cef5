import EventStore
import Foundation
import TestSupport
import Testing

/// A reader of all events must never move past an event that a slower transaction commits later.
@Suite("Reading all events never skips one")
struct GapSafetyTests {
    enum Ending { case commit, rollback }

    @Test(.timeLimit(.minutes(1)), arguments: [Ending.commit, .rollback])
    func aReaderWaitsAtAnOpenTransactionAndMissesNothing(ending: Ending) async throws {
        // A long poll interval: only wake-ups and the held-back check can move the subscriber.
        try await withStore(pollInterval: .seconds(120)) { store, _ in
            let before = event(0), a = event(1), b = event(2)
            try await store.append([before], to: uniqueStream(), expectedVersion: .noStream)

            let subscriber = Task {
                var received: [UUID] = []
                for try await batch in store.subscribeToAll() {
                    received += batch.map(\.id)
                    if received.contains(b.id) { return received }
                }
                return received
            }

            let aAppended = Gate(), finishA = Gate()
            let transactionA = Task {
                struct RolledBack: Error {}
                do {
                    try await store.withTransaction { transaction in
                        try await transaction.append([a], to: uniqueStream("a"), expectedVersion: .noStream)
                        await aAppended.open()
                        await finishA.wait()
                        if ending == .rollback { throw RolledBack() }
                    }
                } catch is RolledBack {}
            }
            await aAppended.wait()

            // B starts after A and commits while A is still open.
            let appendedB = try await store.append([b], to: uniqueStream("b"), expectedVersion: .noStream)

            // While A is open, a reader gets the event before A, never A or B, though B committed. (Other tests'
            // transactions, in other databases, hold nothing back; but one that ends between the statement's snapshot
            // and its look at pg_stat_activity is not seen to be another database's, and holds back for that read:
            // conservative, as readable_horizon() says. So the reader reads again until it has the event before A.)
            var whileOpen = try await readAvailable(store)
            let patience = ContinuousClock.now + .seconds(10)
            while whileOpen.isEmpty, ContinuousClock.now < patience {
                try await Task.sleep(for: .milliseconds(50))  // another database's transaction ending: nothing to await
                whileOpen = try await readAvailable(store)
            }
            #expect(whileOpen.map(\.id) == [before.id])
            let checkpoint = whileOpen.last?.position ?? .start
            #expect(checkpoint < appendedB.position)
            #expect(try await store.headPosition() < appendedB.position)
            #expect(try await store.isHeldBack(after: checkpoint))

            await finishA.open()
            try await transactionA.value

            let expected = ending == .commit ? [before.id, a.id, b.id] : [before.id, b.id]
            // Reading on from the checkpoint taken while A was open yields A (if it committed), then B.
            let everything = try await readEverything(store)
            #expect(everything.map(\.id) == expected)
            #expect(everything.filter { $0.position > checkpoint }.map(\.id) == Array(expected.dropFirst(whileOpen.count)))
            // And a live subscriber that was waiting receives exactly the same, promptly, even on a rollback
            // (which announces nothing).
            let received = try await within(.seconds(20), "the subscriber to receive B") { try await subscriber.value }
            #expect(received == expected)
        }
    }

    /// A transaction of another database cannot write this one's events: left open (an idle session, a long report,
    /// another context on the same server), it must hold none of them back. Transaction ids are cluster-wide, and
    /// readers used to stop at the oldest transaction of the whole server: every view froze behind it.
    @Test(.timeLimit(.minutes(1)))
    func aTransactionOpenInAnotherDatabaseHoldsNothingBack() async throws {
        let elsewhere = try await TestDatabase.create(migrated: false)
        try await withStore(pollInterval: .seconds(120)) { store, _ in
            try await TestDatabase.withConnection(elsewhere) { idle in
                try await idle.query("BEGIN", logger: TestDatabase.logger)
                // A transaction id is taken at the first write; this takes one without writing.
                try await idle.query("SELECT pg_current_xact_id()", logger: TestDatabase.logger)

                let subscriber = Task {
                    var received: [RecordedEvent] = []
                    for try await batch in store.subscribeToAll() {
                        received += batch
                        if received.count == 3 { return received }
                    }
                    return received
                }
                var appended: [AppendResult] = []
                for value in 1...3 {
                    appended.append(try await store.append([event(value)], to: uniqueStream(), expectedVersion: .noStream))
                }
                let readable = try await readAvailable(store)
                #expect(readable.map(\.position) == appended.map(\.lastPosition))
                #expect(try await store.headPosition() == appended.last?.lastPosition)
                #expect(try await store.holdingBack() == nil)
                let received = try await within(.seconds(10), "the subscriber to receive every event") { try await subscriber.value }
                #expect(received.map(\.position) == appended.map(\.lastPosition))
                try await idle.query("ROLLBACK", logger: TestDatabase.logger)
            }
        }
    }

    /// The transaction of the store's own database that holds readers back is named, for readiness and the logs.
    @Test(.timeLimit(.minutes(1)))
    func theSessionHoldingReadersBackIsNamed() async throws {
        try await withStore { store, url in
            try await TestDatabase.withConnection(url) { idle in
                try await idle.query("SET application_name = 'forgotten report'", logger: TestDatabase.logger)
                try await idle.query("BEGIN", logger: TestDatabase.logger)
                try await idle.query("SELECT pg_current_xact_id()", logger: TestDatabase.logger)
                let held = try await store.append([event(1)], to: uniqueStream(), expectedVersion: .noStream)
                #expect(try await readAvailable(store).isEmpty)
                #expect(try await store.headPosition() < held.lastPosition)
                let holder = try #require(try await store.holdingBack())
                #expect(holder.application == "forgotten report")
                #expect(holder.state == "idle in transaction")
                try await idle.query("ROLLBACK", logger: TestDatabase.logger)
                #expect(try await store.holdingBack() == nil)
                #expect(try await readAvailable(store).map(\.position) == [held.lastPosition])
            }
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func manyOverlappingTransactionsAreReadInOneOrderWithoutLossOrRepeat() async throws {
        try await withStore { store, _ in
            // A subscriber in small batches follows writers whose transactions overlap and last randomly long.
            let writers = 6, appendsPerWriter = 40
            let reader = Task {
                var seen: [RecordedEvent] = []
                for try await batch in store.subscribeToAll(batchSize: 7) {
                    seen += batch
                    if seen.count >= writers * appendsPerWriter { break }
                }
                return seen
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for writer in 0..<writers {
                    group.addTask {
                        for index in 0..<appendsPerWriter {
                            try await store.withTransaction { transaction in
                                try await transaction.append([event(index)], to: uniqueStream("w\(writer)"), expectedVersion: .noStream)
                                // Hold some transactions open a while, so that later ones commit first.
                                if index % 3 == 0 { try await Task.sleep(for: .milliseconds(Int.random(in: 1...15))) }
                            }
                        }
                    }
                }
                try await group.waitForAll()
            }
            let seen = try await within(.seconds(30), "the reader to see every event") { try await reader.value }
            #expect(seen.count == writers * appendsPerWriter)
            #expect(Set(seen.map(\.id)).count == seen.count)
            #expect(seen.map(\.id) == (try await readEverything(store)).map(\.id))
        }
    }
}

/// A one-shot gate that tasks can wait on.
actor Gate {
    private var isOpen = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func open() {
        isOpen = true
        waiters.forEach { $0.resume() }
        waiters.removeAll()
    }

    func wait() async {
        if isOpen { return }
        await withCheckedContinuation { waiters.append($0) }
    }
}
