import Foundation
import Logging
import PostgresNIO
import Synchronization
import Tracing

extension EventStore {
    /// What a command writes through: an open database transaction (``LiveTransaction``, from
    /// ``EventStore/withTransaction(_:)``) or a planned one (``PlannedTransaction``, from
    /// ``EventStore/runPlanned(_:write:applied:)``). The same command code runs against either.
    public typealias Transaction = any EventStoreTransaction
}

/// A transaction of the event store, as a command sees it.
public protocol EventStoreTransaction: AnyObject, Sendable {
    var logger: Logger { get }

    /// The transaction's connection, for the caller's own statements in the same transaction. A planned
    /// transaction has none: it throws ``NeedsTransaction``, and the command runs in a live one instead.
    var connection: PostgresConnection { get throws }

    /// ``EventStore/append(_:to:expectedVersion:)``, inside this transaction.
    @discardableResult
    func append(_ events: [NewEvent], to stream: StreamName, expectedVersion: ExpectedVersion) async throws -> AppendResult

    /// Takes the append locks of `streams` until the transaction ends, in name order (so that two
    /// transactions locking the same streams cannot deadlock). Meanwhile nobody else can append to them,
    /// and what this transaction reads of them afterwards stays true until it commits.
    func lock(_ streams: [StreamName]) async throws

    /// Calls `function`, a SQL function of the context's own tables that takes one `jsonb` argument, with
    /// `argument` (JSON text): for what a command writes besides events (a saga's row), in its transaction.
    func call(_ function: String, with argument: String) async throws

    /// ``EventStore/readStream(_:from:limit:)``, inside this transaction.
    func readStream(_ stream: StreamName, from version: Int64, limit: Int) async throws -> [RecordedEvent]

    /// Takes the stream's append lock (see ``lock(_:)``), then reads its events from `version` on, in one
    /// round trip: what a command decides on stays true until the transaction ends.
    ///
    /// Locks taken one read after another are taken in the order of the reads: a command that locks several
    /// streams takes them all first with ``lock(_:)`` (taking a lock it holds again costs nothing more).
    func readStreamLocked(_ stream: StreamName, from version: Int64) async throws -> [RecordedEvent]

    /// What happens when the transaction commits, or when whether it did cannot be known.
    var effects: TransactionEffects { get }

    /// Waits for the turn of `stream` among this process's planned commands, before deciding on its kept state
    /// (``CommandHandler``): two planned commands on one stream, decided on the same kept state, would have one of
    /// them find the stream moved on and run again in a transaction. A planned transaction that holds a turn already
    /// does not wait for another (no two can wait on each other), and none waits longer than the one holding it may
    /// take (the store's query deadline): the version its writes check keeps it correct either way. A live
    /// transaction has the stream's lock instead.
    func takeTurn(on stream: StreamName) async
}

extension EventStoreTransaction {
    public func readStream(_ stream: StreamName, from version: Int64 = 1) async throws -> [RecordedEvent] {
        try await readStream(stream, from: version, limit: .max)
    }

    public func readStreamLocked(_ stream: StreamName) async throws -> [RecordedEvent] {
        try await readStreamLocked(stream, from: 1)
    }

    /// Runs `action` once the transaction has committed; never if it rolls back. For what may only
    /// remember what is durable, such as a cache of the states the transaction read and wrote.
    public func afterCommit(_ action: @escaping @Sendable () -> Void) { effects.afterCommit(action) }

    /// Runs `action` if the database goes away before the caller can know whether the transaction committed (the
    /// connection died during COMMIT, or the deadline passed): for what remembers the transaction's states, which
    /// must then be read again rather than trusted.
    public func ifOutcomeUnknown(_ action: @escaping @Sendable () -> Void) { effects.ifOutcomeUnknown.add(action) }
}

/// What a transaction leaves to do once its outcome is known, and the streams it appended to (whose waiters
/// the store wakes after the commit).
public final class TransactionEffects: Sendable {
    private let appendedTo = Mutex<Set<StreamName>>([])
    private let commitActions = Mutex<[@Sendable () -> Void]>([])
    let ifOutcomeUnknown: EventStore.UnknownOutcome

    init(ifOutcomeUnknown: EventStore.UnknownOutcome = .init()) {
        self.ifOutcomeUnknown = ifOutcomeUnknown
    }

    func appended(to stream: StreamName) { appendedTo.withLock { _ = $0.insert(stream) } }

    /// The streams it appended to (a repeated batch, stored once already, does not count).
    var appendedStreams: Set<StreamName> { appendedTo.withLock { $0 } }

    func afterCommit(_ action: @escaping @Sendable () -> Void) { commitActions.withLock { $0.append(action) } }

    func committed() {
        for action in commitActions.withLock({ actions in defer { actions = [] }; return actions }) { action() }
    }

    /// Checks that `function` names one of the context's SQL functions (lower case and underscores): it is
    /// written into the statement as it is.
    static func check(function: String) {
        guard !function.isEmpty, function.utf8.allSatisfy({ $0 == UInt8(ascii: "_") || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) }) else {
            preconditionFailure("'\(function)' is not the name of one of the context's SQL functions")
        }
    }
}

/// An open transaction of ``EventStore/withTransaction(_:)``: every call is a round trip on its connection.
final class LiveTransaction: EventStoreTransaction {
    let logger: Logger
    let live: PostgresConnection
    let effects: TransactionEffects

    init(connection: PostgresConnection, logger: Logger, effects: TransactionEffects) {
        self.live = connection
        self.logger = logger
        self.effects = effects
    }

    var connection: PostgresConnection { live }

    func takeTurn(on stream: StreamName) async {}

    @discardableResult
    func append(_ events: [NewEvent], to stream: StreamName, expectedVersion: ExpectedVersion) async throws -> AppendResult {
        let statement = try AppendEvents(events, to: stream, expectedVersion: expectedVersion)
        return try await withSpan("append \(stream.category)") { span in
            span.attributes["shop.events"] = events.count
            let result = try await EventStore.runAppend(stream: stream, expectedVersion: expectedVersion) {
                try await EventStore.all(live.execute(statement, logger: logger))
            }
            if !result.wasDuplicate { effects.appended(to: stream) }
            return result
        }
    }

    func lock(_ streams: [StreamName]) async throws {
        let names = Set(streams).sorted().map(\.rawValue)
        guard !names.isEmpty else { return }
        try await live.run("SELECT lock_streams(\(names))", logger: logger)
    }

    func call(_ function: String, with argument: String) async throws {
        TransactionEffects.check(function: function)
        try await live.run("SELECT \(unescaped: function)(\(argument)::jsonb)", logger: logger)
    }

    func readStream(_ stream: StreamName, from version: Int64, limit: Int) async throws -> [RecordedEvent] {
        try await EventStore.all(live.execute(ReadStream(stream: stream, from: version, limit: limit), logger: logger))
    }

    func readStreamLocked(_ stream: StreamName, from version: Int64) async throws -> [RecordedEvent] {
        try await EventStore.all(live.execute(ReadStreamLocked(stream: stream, from: version), logger: logger))
    }
}
