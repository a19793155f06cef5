import Essentials
import EventSourcing
@testable import EventStore
import Foundation
import PostgresNIO
import TestSupport
import Synchronization
import Testing

/// The planned writes alone, as `apply_planned_writes` makes them: one row per append.
struct ApplyPlanned: PostgresPreparedStatement {
    static let sql = "SELECT stream_version, transaction_id, first_position, last_position FROM apply_planned_writes(\(PlannedWrites.parameters(from: 1)))"
    typealias Row = (Int64, Int64, Int64, Int64)

    let writes: PlannedWrites

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 13)
        writes.bind(into: &bindings)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Row.self) }
}

@Suite("Planned writes: a command in one statement")
struct PlannedWritesTests {
    @Test func aCommandOnItsKeptStateIsWrittenAsATransactionWouldWriteIt() async throws {
        try await withStore { store, _ in
            let handler = CommandHandler<Counter>(store: store, codec: Counter.codec)
            let stream = uniqueStream("counter")
            try await handler.handle(.increment(by: 5), on: stream)
            let planned = try #require(try await store.runPlanned({ transaction in
                try await handler.handle(.increment(by: 2), on: stream, in: transaction, metadata: .init(correlationID: "c-2"))
            }, write: { _, writes in ApplyPlanned(writes: writes) }))
            // Told while planning: the version it will have, and positions that are placeholders (no append has them).
            #expect(planned.result.state == 7 && planned.result.streamVersion == 2)
            #expect(try #require(planned.result.position).transactionID < 0)
            // Written: where the rows say, as the stream reads back, and kept for the next command.
            let (version, transaction, first, last) = try #require(planned.rows.first)
            let stored = try await store.readStream(stream)
            #expect(version == 2 && stored.map(\.streamVersion) == [1, 2])
            #expect(stored.last?.position == Position(transactionID: transaction, globalPosition: last) && first == last)
            #expect(stored.last?.metadata.correlationID == "c-2")
            #expect(handler.cache.entry(stream)?.version == 2 && handler.cache.entry(stream)?.state == 7)
            #expect(try await handler.handle(.increment(by: 1), on: stream).state == 8)
        }
    }

    @Test func aPlanOnAKeptStateThatMovedOnWritesNothingAndATransactionDecidesAgain() async throws {
        try await withStore { store, _ in
            // Two handlers, each with its own kept states, stand for two service instances.
            let one = CommandHandler<Counter>(store: store, codec: Counter.codec)
            let other = CommandHandler<Counter>(store: store, codec: Counter.codec)
            let stream = uniqueStream("counter")
            try await one.handle(.increment(by: 995), on: stream)
            try await other.handle(.increment(by: 4), on: stream)  // 999; `one` still keeps 995
            // On 995 the command passes, so it is planned; the statement finds the stream at 2, not 1, and writes nothing.
            let planned = try await store.runPlanned({ transaction in
                try await one.handle(.increment(by: 2), on: stream, in: transaction)
            }, write: { _, writes in ApplyPlanned(writes: writes) })
            #expect(planned == nil)
            #expect(try await store.streamVersion(stream) == 2)
            #expect(one.cache.entry(stream)?.version == 1, "what was not written is not kept")
            // In a transaction, on the stream as it is, the command is refused.
            await #expect(throws: Counter.Failure.overLimit) {
                try await store.withTransaction { try await one.handle(.increment(by: 2), on: stream, in: $0) }
            }
        }
    }

    @Test func aStreamReadButNotWrittenIsCheckedToo() async throws {
        try await withStore { store, _ in
            let one = CommandHandler<Counter>(store: store, codec: Counter.codec)
            let other = CommandHandler<Counter>(store: store, codec: Counter.codec)
            let limit = uniqueStream("limit"), counter = uniqueStream("counter")
            try await one.handle(.increment(by: 1), on: limit)
            try await other.handle(.increment(by: 1), on: limit)  // `one` keeps version 1
            // A command that checks one stream (without locking it) and appends to another.
            let plan = { @Sendable (transaction: EventStore.Transaction) async throws -> Int in
                let (checked, _) = try await one.state(of: limit, in: transaction, locking: false)
                return try await one.handle(.increment(by: checked), on: counter, in: transaction).state
            }
            #expect(try await store.runPlanned(plan, write: { _, writes in ApplyPlanned(writes: writes) }) == nil)
            #expect(try await store.streamVersion(counter) == 0)
            // Once `one` has read what it missed, the same plan goes through in one statement.
            _ = try await one.load(limit)
            let planned = try #require(try await store.runPlanned(plan, write: { _, writes in ApplyPlanned(writes: writes) }))
            #expect(planned.result == 2 && planned.rows.count == 1)
            #expect(try await store.streamVersion(counter) == 1)
        }
    }

    @Test func aCommandThatNeedsItsConnectionOrRefusesIsNotPlanned() async throws {
        try await withStore { store, _ in
            let handler = CommandHandler<Counter>(store: store, codec: Counter.codec)
            let stream = uniqueStream("counter")
            try await handler.handle(.increment(by: 999), on: stream)
            let ranStatement = Mutex(false)
            // Its own SQL: only a transaction has a connection.
            let ownSQL = try await store.runPlanned({ transaction in
                try await handler.handle(.increment(by: 1), on: stream, in: transaction)
                try await transaction.connection.run("SELECT 1", logger: transaction.logger)
            }, write: { _, writes in ranStatement.withLock { $0 = true }; return ApplyPlanned(writes: writes) })
            // A refusal decided on a kept state may be a stale one's: only a transaction refuses for sure.
            let refused = try await store.runPlanned({ transaction in
                try await handler.handle(.increment(by: 2), on: stream, in: transaction)
            }, write: { _, writes in ranStatement.withLock { $0 = true }; return ApplyPlanned(writes: writes) })
            #expect(ownSQL == nil && refused == nil && !ranStatement.withLock { $0 })
            #expect(try await store.streamVersion(stream) == 1 && handler.cache.entry(stream)?.version == 1)
        }
    }

    @Test func writesTheStatementSaysItDidNotMakeAreNotKept() async throws {
        try await withStore { store, _ in
            let handler = CommandHandler<Counter>(store: store, codec: Counter.codec)
            let stream = uniqueStream("counter")
            try await handler.handle(.increment(by: 5), on: stream)
            // A statement that makes nothing (as `run_planned_command` when the idempotency key was used already).
            struct Nothing: PostgresPreparedStatement {
                static let sql = "SELECT 1 WHERE false"
                typealias Row = Int
                func makeBindings() throws -> PostgresBindings { PostgresBindings() }
                func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode(Int.self) }
            }
            let planned = try await store.runPlanned({ transaction in
                try await handler.handle(.increment(by: 2), on: stream, in: transaction)
            }, write: { _, _ in Nothing() }, applied: { !$0.isEmpty })
            #expect(planned?.rows.isEmpty == true)
            #expect(handler.cache.entry(stream)?.version == 1 && handler.cache.entry(stream)?.state == 5)
            #expect(try await handler.handle(.increment(by: 1), on: stream).state == 6)
        }
    }
}

extension PlannedWritesTests {
    /// Planned commands of one process on one stream take turns: each decides on the state the one before it kept, so
    /// none finds the stream moved on (which would cost it a transaction of several round trips). Four at once: under
    /// a heavy load a long queue of them could outwait the store's query deadline, and then go on without their turns.
    @Test func plannedCommandsOnOneStreamTakeTurnsAndAllAreWrittenPlanned() async throws {
        try await withStore { store, _ in
            let handler = CommandHandler<Counter>(store: store, codec: Counter.codec)
            let stream = uniqueStream("counter")
            try await handler.handle(.increment(by: 1), on: stream)
            let written = try await withThrowingTaskGroup(of: Bool.self) { group in
                for _ in 0..<4 {
                    group.addTask {
                        try await store.runPlanned({ transaction in
                            try await handler.handle(.increment(by: 1), on: stream, in: transaction)
                        }, write: { _, writes in ApplyPlanned(writes: writes) }) != nil
                    }
                }
                return try await group.reduce(into: [Bool]()) { $0.append($1) }
            }
            #expect(written.allSatisfy { $0 }, "\(written.filter { !$0 }.count) of 4 found the stream moved on")
            #expect(try await store.readStream(stream).count == 5)
        }
    }

    /// A planned command that holds one stream's turn does not wait for another's (two such could wait on each other):
    /// it goes on without it, and the version its writes check keeps it correct. (Made to wait for an hour otherwise:
    /// a wait would fail the test at its deadline.)
    @Test func aCommandHoldingATurnDoesNotWaitForAnother() async throws {
        let turns = Turns<StreamName>()
        let first = uniqueStream("counter"), second = uniqueStream("counter")
        let holder = PlannedTransaction(logger: TestDatabase.logger, turns: turns, longestWait: .seconds(3600))
        await holder.takeTurn(on: second)
        let both = PlannedTransaction(logger: TestDatabase.logger, turns: turns, longestWait: .seconds(3600))
        try await within(.seconds(30), "the second turn, not waited for") {
            await both.takeTurn(on: first)
            await both.takeTurn(on: second)
        }
        #expect(both.turnsTaken == [first] && holder.turnsTaken == [second])
        holder.leaveTurns()
        both.leaveTurns()
        // Given back, each is free again: the next takes it at once.
        let next = PlannedTransaction(logger: TestDatabase.logger, turns: turns, longestWait: .seconds(3600))
        try await within(.seconds(30), "the turns given back") {
            await next.takeTurn(on: second)
            await next.takeTurn(on: first)
        }
        #expect(next.turnsTaken == [second, first])
    }
}
