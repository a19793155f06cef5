import Essentials
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
///
/// States are kept between commands (``StateCache``): a command reads only the events appended since the state
/// it starts from was folded, so its cost does not grow with the stream's length. With `snapshots`, a state that is not
/// kept (after a restart) starts from the stream's latest snapshot, so loading it does not grow with the stream's
/// length either.
public struct CommandHandler<D: Decider>: Sendable {
    public let store: EventStore
    public let codec: EventCodec<D.Event>
    public let maxAttempts: Int
    public let cache: StateCache<D.State>
    public let snapshots: Snapshotting<D.State>?

    public init(store: EventStore, codec: EventCodec<D.Event>, maxAttempts: Int = 5, cache: StateCache<D.State> = .init(),
                snapshots: Snapshotting<D.State>? = nil) {
        precondition(maxAttempts >= 1)
        self.store = store
        self.codec = codec
        self.maxAttempts = maxAttempts
        self.cache = cache
        self.snapshots = snapshots
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
        eventIDs: @Sendable (Int) -> UUID = { _ in .timeOrdered() }
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
                let state = D.replay(events, from: state)
                if !appended.wasDuplicate {
                    cache.keep(.init(state: state, version: appended.streamVersion), for: stream)
                    snapshotIfDue(stream, state, version: appended.streamVersion, after: version)
                }
                return Result(events: events, state: state, streamVersion: appended.streamVersion, position: appended.position, attempts: attempt)
            } catch let conflict as WrongExpectedVersion {
                if attempt >= maxAttempts { throw conflict }
                // Another writer got there first: let it finish before reading again. Writers that collided together,
                // retrying at once, would collide again; a random pause of up to a millisecond per attempt spreads them.
                try await Task.sleep(for: .microseconds(Int.random(in: 0...(1_000 * min(attempt, 10)))))
            }
        }
    }

    /// Handles `command` on `stream` inside `transaction`, for a caller that writes more in the same
    /// transaction (an idempotency record, other streams). The stream's lock is held from the read (or the
    /// append) to the end of the transaction.
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
        eventIDs: @Sendable (Int) -> UUID = { _ in .timeOrdered() }
    ) async throws -> Result {
        try await handle(on: stream, in: transaction, expectedVersion: expectedVersion, metadata: metadata, eventIDs: eventIDs) { state in
            try D.decide(command, state)
        }
    }

    /// Decides with `decide` (a command, or several in a row) on `stream`'s state, and appends what it yields,
    /// inside `transaction`.
    ///
    /// A kept state is usually current (a stream mostly has one writer at a time), so it is first decided on
    /// that, without reading, and appended with its version, which the append checks under the stream's lock:
    /// one round trip for the whole command. A stream with nothing kept is taken to be new (empty, version 0),
    /// which it is when a command creates it (an order, a payment), and checked the same way. Only when the
    /// stream has moved on, or the decision appends nothing or refuses (neither may be decided on a state that
    /// could be stale), the events since are read, under the lock, and it is decided again.
    @discardableResult
    public func handle(
        on stream: StreamName,
        in transaction: EventStore.Transaction,
        expectedVersion: Int64? = nil,
        metadata: EventMetadata? = nil,
        eventIDs: @Sendable (Int) -> UUID = { _ in .timeOrdered() },
        _ decide: (D.State) throws -> [D.Event]
    ) async throws -> Result {
        await transaction.takeTurn(on: stream)
        if let result = try await withoutReading(on: stream, in: transaction, expectedVersion: expectedVersion, metadata: metadata,
                                                 eventIDs: eventIDs, decide) {
            return result
        }
        // The decider loop: read (under the stream's lock, so it is decided once), fold, decide, append.
        let (state, version) = try await state(of: stream, in: transaction)
        if let expectedVersion, expectedVersion != version {
            throw WrongExpectedVersion(stream: stream, expected: .exact(expectedVersion), actual: version)
        }
        let events = try decide(state)
        guard !events.isEmpty else {
            return Result(events: [], state: state, streamVersion: version, position: nil, attempts: 1)
        }
        return try await append(events, to: stream, after: (state, version), in: transaction, metadata: metadata, eventIDs: eventIDs)
    }

    /// The fast path of ``handle(on:in:expectedVersion:metadata:eventIDs:_:)``, which saves the read: decides on the kept
    /// state (or, with none, on a new stream's) and appends at its version, which the append checks. `nil` when that
    /// cannot be trusted: the stream has moved on, the expected version is another, or the decision appends nothing
    /// or refuses (neither may be answered from a state that could be stale).
    private func withoutReading(
        on stream: StreamName, in transaction: EventStore.Transaction, expectedVersion: Int64?, metadata: EventMetadata?,
        eventIDs: @Sendable (Int) -> UUID, _ decide: (D.State) throws -> [D.Event]
    ) async throws -> Result? {
        let kept = cache.entry(stream) ?? .init(state: D.initialState, version: 0)
        guard expectedVersion == nil || expectedVersion == kept.version, let events = try? decide(kept.state), !events.isEmpty else {
            return nil
        }
        do {
            return try await append(events, to: stream, after: (kept.state, kept.version), in: transaction, metadata: metadata, eventIDs: eventIDs)
        } catch is WrongExpectedVersion {
            return nil
        }
    }

    /// The stream's state and version, with its append lock taken until `transaction` ends (so nobody appends
    /// before the caller does): for a command that decides itself, on several streams, or writes more.
    ///
    /// - Parameter locking: `false` only reads, for a stream the command checks but does not write (taking its
    ///   lock as well could deadlock with a command that writes it and then locks one this command holds).
    public func state(
        of stream: StreamName, in transaction: EventStore.Transaction, locking: Bool = true
    ) async throws -> (state: D.State, version: Int64) {
        let start = try await starting(stream)
        let from = (start?.version ?? 0) + 1
        let recorded = try await locking ? transaction.readStreamLocked(stream, from: from) : transaction.readStream(stream, from: from)
        let current = try fold(recorded, from: start)
        if !recorded.isEmpty {
            let handler = self
            transaction.afterCommit {
                handler.cache.keep(.init(state: current.state, version: current.version), for: stream)
                handler.snapshotIfDue(stream, current.state, version: current.version, after: start?.version ?? 0, folded: true)
            }
        }
        return current
    }

    /// Appends `events`, decided on `current` (from ``state(of:in:)``), to `stream` inside `transaction`.
    @discardableResult
    public func append(
        _ events: [D.Event], to stream: StreamName, after current: (state: D.State, version: Int64), in transaction: EventStore.Transaction,
        metadata: EventMetadata? = nil, eventIDs: @Sendable (Int) -> UUID = { _ in .timeOrdered() }
    ) async throws -> Result {
        let newEvents = try events.enumerated().map { index, event in
            try NewEvent(event, codec: codec, id: eventIDs(index), metadata: metadata)
        }
        let cache = cache
        // Whether this append committed may never be known (the database went away during COMMIT): then what is kept
        // of the stream is not trusted either.
        transaction.ifOutcomeUnknown { cache.forget(stream) }
        let appended = try await transaction.append(newEvents, to: stream, expectedVersion: .exact(current.version))
        let state = D.replay(events, from: current.state)
        if !appended.wasDuplicate {
            let version = appended.streamVersion, handler = self
            transaction.afterCommit {
                cache.keep(.init(state: state, version: version), for: stream)
                handler.snapshotIfDue(stream, state, version: version, after: current.version)
            }
        }
        return Result(events: events, state: state, streamVersion: appended.streamVersion, position: appended.position, attempts: 1)
    }

    /// The state and version after `recorded`, the events of a stream that follow `start` (from its beginning
    /// when `nil`).
    public func fold(_ recorded: [RecordedEvent], from start: StateCache<D.State>.Entry? = nil) throws -> (state: D.State, version: Int64) {
        var state = start?.state ?? D.initialState
        var version = start?.version ?? 0
        for event in recorded {
            guard event.streamVersion == version + 1 else {
                throw EventStoreError.unexpectedResponse("\(event.stream) skips from version \(version) to \(event.streamVersion)")
            }
            let decoded = try event.decode(with: codec)
            state = D.evolve(consume state, decoded)
            version = event.streamVersion
        }
        return (state, version)
    }

    /// The stream's current state and version (committed: read outside any transaction).
    public func load(_ stream: StreamName) async throws -> (state: D.State, version: Int64) {
        let start = try await starting(stream)
        let recorded = try await store.readStream(stream, from: (start?.version ?? 0) + 1)
        let current = try fold(recorded, from: start)
        if !recorded.isEmpty {
            cache.keep(.init(state: current.state, version: current.version), for: stream)
            snapshotIfDue(stream, current.state, version: current.version, after: start?.version ?? 0, folded: true)
        }
        return current
    }

    /// Where a stream's state starts from: the kept one, else its latest snapshot of this schema (one that cannot be
    /// decoded is ignored, and the stream is folded from its first event), else nothing.
    func starting(_ stream: StreamName) async throws -> StateCache<D.State>.Entry? {
        if let kept = cache.entry(stream) { return kept }
        guard let snapshots, let stored = try await store.snapshot(of: stream, schema: snapshots.schema) else { return nil }
        do {
            return .init(state: try snapshots.decode(stored.state), version: stored.version)
        } catch {
            store.logger.warning("a snapshot that cannot be decoded is ignored", metadata: ["stream": "\(stream)", "error": "\(error)"])
            return nil
        }
    }

    /// Takes a snapshot of `state` at `version` when the stream has passed a multiple of `every` since `previous` (a
    /// commit), or when `every` events or more were just folded to reach it (a load): after the commit, off the command's
    /// path. A snapshot that cannot be written is logged and costs only a longer load next time.
    func snapshotIfDue(_ stream: StreamName, _ state: D.State, version: Int64, after previous: Int64, folded: Bool = false) {
        guard let snapshots else { return }
        let due = folded ? version - previous >= snapshots.every : version / snapshots.every > previous / snapshots.every
        guard due else { return }
        let store = store
        Task {
            do {
                try await store.saveSnapshot(try snapshots.encode(state), of: stream, version: version, schema: snapshots.schema)
            } catch {
                store.logger.warning("a snapshot could not be taken", metadata: ["stream": "\(stream)", "error": "\(error)"])
            }
        }
    }
}
