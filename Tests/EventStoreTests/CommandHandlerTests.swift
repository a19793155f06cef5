import EventSourcing
import EventStore
import Foundation
import TestSupport
import Testing

/// A counter that refuses to go above its limit.
enum Counter: Decider {
    enum Command: Sendable { case increment(by: Int) }
    enum Event: Sendable, Equatable { case incremented(Incremented) }
    struct Incremented: Codable, Sendable, Equatable { var by: Int }
    enum Failure: Error, Equatable { case overLimit }
    typealias State = Int

    static let limit = 1_000
    static let initialState = 0

    static func decide(_ command: Command, _ count: Int) throws(Failure) -> [Event] {
        switch command {
        case .increment(by: 0): return []
        case .increment(let by):
            guard count + by <= limit else { throw .overLimit }
            return [.incremented(Incremented(by: by))]
        }
    }

    static func evolve(_ count: Int, _ event: Event) -> Int {
        switch event { case .incremented(let e): count + e.by }
    }

    static let codec = EventCodec<Event>(
        .event("test.counter-incremented", embed: Event.incremented) { if case .incremented(let e) = $0 { e } else { nil } })
}

@Suite("The decider loop")
struct CommandHandlerTests {
    @Test func decidesFromTheFoldedStreamAndAppendsWithTheVersionItRead() async throws {
        try await withStore { store, _ in
            let handler = CommandHandler<Counter>(store: store, codec: Counter.codec)
            let stream = uniqueStream("counter")
            let first = try await handler.handle(.increment(by: 5), on: stream, metadata: .init(correlationID: "c-1"))
            #expect(first.state == 5 && first.streamVersion == 1 && first.events == [.incremented(.init(by: 5))])
            let second = try await handler.handle(.increment(by: 2), on: stream)
            #expect(second.state == 7 && second.streamVersion == 2)
            #expect(try #require(first.position) < #require(second.position))
            // A command that changes nothing appends nothing.
            let nothing = try await handler.handle(.increment(by: 0), on: stream)
            #expect(nothing.events.isEmpty && nothing.position == nil && nothing.streamVersion == 2)
            #expect(try await store.readStream(stream).first?.metadata.correlationID == "c-1")
        }
    }

    @Test func aRefusalWritesNothing() async throws {
        try await withStore { store, _ in
            let handler = CommandHandler<Counter>(store: store, codec: Counter.codec)
            let stream = uniqueStream("counter")
            try await handler.handle(.increment(by: 999), on: stream)
            await #expect(throws: Counter.Failure.overLimit) { try await handler.handle(.increment(by: 2), on: stream) }
            #expect(try await store.streamVersion(stream) == 1)
        }
    }

    // A minute or more when the whole suite runs at once on two cores: every round trip then waits for a thread.
    @Test(.timeLimit(.minutes(3)))
    func concurrentCommandsOnOneStreamAllLandThroughRetries() async throws {
        try await withStore { store, _ in
            let handler = CommandHandler<Counter>(store: store, codec: Counter.codec, maxAttempts: 100)
            let stream = uniqueStream("counter")
            let attempts = try await withThrowingTaskGroup(of: Int.self) { group in
                // Four writers of ten commands each: enough to collide, few enough to finish in seconds on a machine that
                // runs the whole suite at once (each collision costs a read and an append again).
                for _ in 0..<4 {
                    group.addTask {
                        var attempts = 0
                        for _ in 0..<10 { attempts += try await handler.handle(.increment(by: 1), on: stream).attempts }
                        return attempts
                    }
                }
                return try await group.reduce(0, +)
            }
            #expect(try await handler.load(stream).state == 40)
            #expect(try await store.readStream(stream).map(\.streamVersion) == Array(1...40))
            #expect(attempts > 40, "the writers did contend, so some commands were retried")
        }
    }

    @Test func givesUpAfterItsAttemptsWithTheLastConflict() async throws {
        try await withStore { store, _ in
            let handler = CommandHandler<Counter>(store: store, codec: Counter.codec, maxAttempts: 1)
            let stream = uniqueStream("counter")
            // 16 single-attempt handlers race: each either lands or surfaces the conflict as it is.
            let outcomes = await withTaskGroup(of: (any Error)?.self) { group in
                for _ in 0..<16 {
                    group.addTask {
                        do { _ = try await handler.handle(.increment(by: 1), on: stream); return nil } catch { return error }
                    }
                }
                return await group.reduce(into: [(any Error)?]()) { $0.append($1) }
            }
            let errors = outcomes.compactMap { $0 }
            #expect(errors.allSatisfy { $0 is WrongExpectedVersion }, "\(errors)")
            let version = try await store.streamVersion(stream)
            #expect(version == Int64(16 - errors.count))
        }
    }

    // MARK: Kept states

    @Test func decidesFromTheKeptStateAndOnlyTheEventsAfterIt() async throws {
        try await withStore { store, _ in
            let handler = CommandHandler<Counter>(store: store, codec: Counter.codec)
            let stream = uniqueStream("counter")
            try await handler.handle(.increment(by: 5), on: stream)
            try await handler.handle(.increment(by: 2), on: stream)
            #expect(handler.cache.entry(stream).map { [$0.state, Int($0.version)] } == [7, 2])
            // A kept state that (falsely) says 500 at version 1: a command that reads only what follows version 1
            // decides 500 + 2 + 1. Reading the whole stream, it would decide 5 + 2 + 1.
            let probe = CommandHandler<Counter>(store: store, codec: Counter.codec)
            probe.cache.keep(.init(state: 500, version: 1), for: stream)
            #expect(try await probe.handle(.increment(by: 1), on: stream).state == 503)
            let inTransaction = try await store.withTransaction { try await probe.state(of: stream, in: $0).state }
            #expect(inTransaction == 503)
        }
    }

    @Test func handlersInTwoProcessesSeeEachOthersAppends() async throws {
        try await withStore { store, _ in
            // Two handlers, each with its own kept states, stand for two service instances.
            let one = CommandHandler<Counter>(store: store, codec: Counter.codec)
            let other = CommandHandler<Counter>(store: store, codec: Counter.codec)
            let stream = uniqueStream("counter")
            var expected = 0
            for round in 1...6 {
                let handler = round.isMultiple(of: 2) ? one : other
                expected += round
                if round.isMultiple(of: 3) {
                    let result = try await store.withTransaction { try await handler.handle(.increment(by: round), on: stream, in: $0) }
                    #expect(result.state == expected)
                } else {
                    #expect(try await handler.handle(.increment(by: round), on: stream).state == expected)
                }
            }
            let seenByOne = try await one.load(stream).state, seenByOther = try await other.load(stream).state
            #expect(seenByOne == expected && seenByOther == expected)
        }
    }

    @Test func aCommandDecidedOnAKeptStateThatMovedOnIsDecidedAgainOnTheFreshOne() async throws {
        try await withStore { store, _ in
            let one = CommandHandler<Counter>(store: store, codec: Counter.codec)
            let other = CommandHandler<Counter>(store: store, codec: Counter.codec)
            let stream = uniqueStream("counter")
            try await one.handle(.increment(by: 995), on: stream)
            try await other.handle(.increment(by: 4), on: stream)  // 999; `one` still keeps 995
            // On 995 the command passes; on the stream as it is, 999, it is over the limit.
            await #expect(throws: Counter.Failure.overLimit) {
                try await store.withTransaction { try await one.handle(.increment(by: 2), on: stream, in: $0) }
            }
            #expect(try await store.streamVersion(stream) == 2)
            let result = try await store.withTransaction { try await one.handle(.increment(by: 1), on: stream, in: $0) }
            #expect(result.state == 1000 && result.streamVersion == 3)
        }
    }

    @Test func aStreamWithNothingKeptIsTakenToBeNewAndReadWhenItIsNot() async throws {
        try await withStore { store, _ in
            let writer = CommandHandler<Counter>(store: store, codec: Counter.codec)
            let stream = uniqueStream("counter")
            // New: decided on the empty state and appended at version 0, which the append confirms.
            let created = try await store.withTransaction { try await writer.handle(.increment(by: 998), on: stream, in: $0) }
            #expect(created.state == 998 && created.streamVersion == 1)
            // A handler that keeps nothing of it (another instance) takes it to be new too: on 0 the command passes,
            // on the stream as it is, 998, it is over the limit.
            let fresh = CommandHandler<Counter>(store: store, codec: Counter.codec)
            await #expect(throws: Counter.Failure.overLimit) {
                try await store.withTransaction { try await fresh.handle(.increment(by: 5), on: stream, in: $0) }
            }
            let result = try await store.withTransaction { try await fresh.handle(.increment(by: 2), on: stream, in: $0) }
            #expect(result.state == 1000 && result.streamVersion == 2)
            #expect(try await store.readStream(stream).count == 2)
        }
    }

    @Test func aRolledBackTransactionLeavesNothingKept() async throws {
        try await withStore { store, _ in
            let handler = CommandHandler<Counter>(store: store, codec: Counter.codec)
            let stream = uniqueStream("counter")
            try await handler.handle(.increment(by: 5), on: stream)
            struct Abandon: Error {}
            await #expect(throws: Abandon.self) {
                try await store.withTransaction { transaction in
                    #expect(try await handler.handle(.increment(by: 10), on: stream, in: transaction).state == 15)
                    throw Abandon()
                }
            }
            #expect(handler.cache.entry(stream)?.version == 1 && handler.cache.entry(stream)?.state == 5)
            #expect(try await handler.handle(.increment(by: 1), on: stream).state == 6)
            #expect(try await store.readStream(stream).count == 2)
        }
    }

    @Test func theKeptStatesAreBoundedAndKeepTheLatestVersion() {
        let cache = StateCache<Int>(capacity: 4)
        let streams = (0..<5).map { StreamName(stringLiteral: "counter-\($0)") }
        cache.keep(.init(state: 1, version: 1), for: streams[0])
        cache.keep(.init(state: 2, version: 2), for: streams[0])
        cache.keep(.init(state: 1, version: 1), for: streams[0])  // older: ignored
        #expect(cache.entry(streams[0])?.state == 2)
        for stream in streams.dropFirst() { cache.keep(.init(state: 0, version: 1), for: stream) }
        #expect(cache.count <= 4)
        // The streams used last stay; the first, untouched for a generation, went.
        #expect(cache.entry(streams[4]) != nil && cache.entry(streams[3]) != nil)
        #expect(cache.entry(streams[0]) == nil)
    }
}

/// A decider whose state counts how often it was copied: its storage is a class, copied on write the way an
/// array or a dictionary is, and each copy is counted. Folding must hand the state on, not copy it per event (a
/// product's stock keeps every committed reservation: copied per event, a fold grew with the square of the stream).
enum Ledger: Decider {
    final class Lines: @unchecked Sendable {
        var lines: [Int]
        init(_ lines: [Int]) { self.lines = lines }
    }

    struct State: Sendable {
        var storage = Lines([])
        var copies = 0

        mutating func append(_ line: Int) {
            if !isKnownUniquelyReferenced(&storage) {
                storage = Lines(storage.lines)
                copies += 1
            }
            storage.lines.append(line)
        }
    }

    enum Command: Sendable { case write(Int) }
    enum Event: Sendable { case written(Written) }
    struct Written: Codable, Sendable { var line: Int }

    static var initialState: State { State() }

    static func decide(_ command: Command, _ state: State) -> [Event] {
        switch command { case .write(let line): [.written(.init(line: line))] }
    }

    static func evolve(_ state: consuming State, _ event: Event) -> State {
        switch event { case .written(let written): state.append(written.line) }
        return state
    }

    static let codec = EventCodec<Event>(
        .event("test.line-written", embed: Event.written) { if case .written(let e) = $0 { e } else { nil } })
}

@Suite("Folding a stream")
struct FoldingTests {
    @Test func replayingHandsTheStateOnWithoutCopyingItPerEvent() {
        let state = Ledger.replay((1...500).map { Ledger.Event.written(.init(line: $0)) })
        #expect(state.storage.lines.count == 500)
        #expect(state.copies == 0)
        // From a state someone else still holds: copied once, at the first event, never after.
        let more = Ledger.replay((1...500).map { Ledger.Event.written(.init(line: $0)) }, from: state)
        #expect(more.storage.lines.count == 1_000 && more.copies == 1 && state.storage.lines.count == 500)
    }

    @Test func loadingFoldsTheStoredStreamWithoutCopyingTheStatePerEvent() async throws {
        try await withStore { store, _ in
            let stream = uniqueStream("ledger")
            let events = try (1...500).map { try NewEvent(Ledger.Event.written(.init(line: $0)), codec: Ledger.codec) }
            _ = try await store.append(events, to: stream, expectedVersion: .noStream)
            let (state, version) = try await CommandHandler<Ledger>(store: store, codec: Ledger.codec).load(stream)
            #expect(version == 500 && state.storage.lines == Array(1...500))
            #expect(state.copies == 0)
        }
    }
}
