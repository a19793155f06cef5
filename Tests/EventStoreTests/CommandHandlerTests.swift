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

    @Test(.timeLimit(.minutes(1)))
    func concurrentCommandsOnOneStreamAllLandThroughRetries() async throws {
        try await withStore { store, _ in
            let handler = CommandHandler<Counter>(store: store, codec: Counter.codec, maxAttempts: 100)
            let stream = uniqueStream("counter")
            let attempts = try await withThrowingTaskGroup(of: Int.self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        var attempts = 0
                        for _ in 0..<15 { attempts += try await handler.handle(.increment(by: 1), on: stream).attempts }
                        return attempts
                    }
                }
                return try await group.reduce(0, +)
            }
            #expect(try await handler.load(stream).state == 120)
            #expect(try await store.readStream(stream).map(\.streamVersion) == Array(1...120))
            #expect(attempts > 120, "the writers did contend, so some commands were retried")
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
}
