import EventSourcing
import Foundation

/// Runs a ``Decider`` against a stream: read the stream, fold `evolve`, `decide`, append the new events
/// with the version that was read. When another writer got there first, it starts over, at most
/// `maxAttempts` times in all, then throws the last ``WrongExpectedVersion``.
///
/// ```swift
/// let products = CommandHandler<Product>(store: store, codec: Product.codec)
/// let result = try await products.handle(.rename(sku, to: "Big mug"), on: try StreamName(category: "product", id: sku))
/// ```
public struct CommandHandler<D: Decider>: Sendable {
    public let store: EventStore
    public let codec: EventCodec<D.Event>
    public let maxAttempts: Int

    public init(store: EventStore, codec: EventCodec<D.Event>, maxAttempts: Int = 5) {
        precondition(maxAttempts >= 1)
        self.store = store
        self.codec = codec
        self.maxAttempts = maxAttempts
    }

    public struct Result: Sendable {
        /// The events the command caused (none when it changed nothing, for example a repeat).
        public let events: [D.Event]
        /// The state after them.
        public let state: D.State
        /// The stream's version after the command.
        public let streamVersion: Int64
        /// Where the append stands in commit order; `nil` when nothing was appended.
        public let position: Position?
        /// How many times it read and decided (more than 1 after concurrent writes).
        public let attempts: Int
    }

    /// Handles `command` on `stream`. A domain refusal (`D.Failure`) is thrown as it is, and nothing is written.
    ///
    /// - Parameter eventIDs: makes the id of each new event from its index, for writers that must be able
    ///   to retry safely (the store stores a repeated batch once); random ids by default.
    @discardableResult
    public func handle(
        _ command: D.Command,
        on stream: StreamName,
        metadata: EventMetadata? = nil,
        eventIDs: @Sendable (Int) -> UUID = { _ in UUID() }
    ) async throws -> Result {
        var attempt = 0
        while true {
            attempt += 1
            let (state, version) = try await load(stream)
            let events = try D.decide(command, state)
            guard !events.isEmpty else {
                return Result(events: [], state: state, streamVersion: version, position: nil, attempts: attempt)
            }
            let newEvents = try events.enumerated().map { index, event in
                try NewEvent(event, codec: codec, id: eventIDs(index), metadata: metadata)
            }
            do {
                let appended = try await store.append(newEvents, to: stream, expectedVersion: .exact(version))
                return Result(events: events, state: D.replay(events, from: state), streamVersion: appended.streamVersion,
                              position: appended.position, attempts: attempt)
            } catch let conflict as WrongExpectedVersion {
                if attempt >= maxAttempts { throw conflict }
            }
        }
    }

    /// Handles `command` on `stream` inside `transaction`, for a caller that writes more in the same
    /// transaction (an idempotency record, other streams). The stream's lock is taken first, so the version
    /// read cannot move before the append: no retry is needed.
    ///
    /// - Parameter expectedVersion: the version the caller read (an HTTP `If-Match`); a different version
    ///   throws ``WrongExpectedVersion`` and nothing is decided.
    @discardableResult
    public func handle(
        _ command: D.Command,
        on stream: StreamName,
        in transaction: EventStore.Transaction,
        expectedVersion: Int64? = nil,
        metadata: EventMetadata? = nil,
        eventIDs: @Sendable (Int) -> UUID = { _ in UUID() }
    ) async throws -> Result {
        try await transaction.lock([stream])
        let (state, version) = try fold(try await transaction.readStream(stream))
        if let expectedVersion, expectedVersion != version {
            throw WrongExpectedVersion(stream: stream, expected: .exact(expectedVersion), actual: version)
        }
        let events = try D.decide(command, state)
        guard !events.isEmpty else {
            return Result(events: [], state: state, streamVersion: version, position: nil, attempts: 1)
        }
        let newEvents = try events.enumerated().map { index, event in
            try NewEvent(event, codec: codec, id: eventIDs(index), metadata: metadata)
        }
        let appended = try await transaction.append(newEvents, to: stream, expectedVersion: .exact(version))
        return Result(events: events, state: D.replay(events, from: state), streamVersion: appended.streamVersion,
                      position: appended.position, attempts: 1)
    }

    /// The state and version of a stream's events.
    public func fold(_ recorded: [RecordedEvent]) throws -> (state: D.State, version: Int64) {
        var state = D.initialState
        for event in recorded {
            state = D.evolve(state, try event.decode(with: codec))
        }
        return (state, recorded.last?.streamVersion ?? 0)
    }

    /// The stream's current state and version.
    public func load(_ stream: StreamName) async throws -> (state: D.State, version: Int64) {
        try fold(try await store.readStream(stream))
    }
}
