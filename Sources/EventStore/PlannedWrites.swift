import Essentials
import Foundation
import Logging
import PostgresNIO
import Synchronization
import Tracing

/// The writes of a command decided on the states kept in memory, recorded instead of made, to be made in one
/// statement: the streams it locked (in the order it took them), the version at which it read each stream, its
/// appends, and its calls of the context's own SQL functions (``EventStoreTransaction/call(_:with:)``).
/// `Migrations/eventstore/0004_planned_writes.sql` makes them.
///
/// A command in a transaction costs a round trip for BEGIN, for each lock, read and append, for whatever else
/// it writes, and for COMMIT. Most commands find their streams where they left them (a stream mostly has one
/// writer at a time), so the reads find nothing new: planned, the same command costs one round trip, and one
/// commit. When a stream has moved on, the statement writes nothing and the command is decided again in a
/// transaction (``EventStore/runPlanned(_:write:applied:)``).
public struct PlannedWrites: Sendable {
    private(set) var locks: [String] = []
    private var locked: Set<String> = []
    private(set) var reads: [(stream: String, version: Int64)] = []
    private(set) var appends: [(statement: AppendEvents, version: Int64)] = []
    private(set) var calls: [(function: String, argument: String)] = []
    /// Each append's first and last position as the command was told them, to be replaced by the real ones.
    public private(set) var placeholders: [Position] = []

    mutating func lock(_ stream: String) {
        if locked.insert(stream).inserted { locks.append(stream) }
    }

    /// Nothing is read: the stream is taken to be at `version`, which the statement checks.
    mutating func read(_ stream: String, at version: Int64, locking: Bool) -> [RecordedEvent] {
        if locking { lock(stream) }
        reads.append((stream, version))
        return []
    }

    mutating func append(_ statement: AppendEvents, after version: Int64) -> AppendResult {
        lock(statement.stream.rawValue)
        appends.append((statement, version))
        let first = Self.placeholder(), last = Self.placeholder()
        placeholders += [first, last]
        return AppendResult(streamVersion: version + Int64(statement.ids.count), firstPosition: first, lastPosition: last, wasDuplicate: false)
    }

    mutating func call(_ function: String, with argument: String) {
        calls.append((function, argument))
    }

    /// A position no append has: negative, and random (nothing a client sent can spell it by chance). Each part
    /// has 18 digits, so that no placeholder's text is the start of another's.
    private static func placeholder() -> Position {
        let digits: Range<Int64> = 100_000_000_000_000_000..<1_000_000_000_000_000_000
        return Position(transactionID: -Int64.random(in: digits), globalPosition: -Int64.random(in: digits))
    }

    /// As a transaction's appends are traced: `append order`, or `append cart, order` for several categories.
    var spanName: String {
        var categories: [String] = []
        for (statement, _) in appends {
            let category = String(statement.stream.category)
            if !categories.contains(category) { categories.append(category) }
        }
        return categories.isEmpty ? "planned writes" : "append " + categories.joined(separator: ", ")
    }

    /// Binds the writes as the thirteen parameters `apply_planned_writes` takes, after the statement's own.
    public func bind(into bindings: inout PostgresBindings) {
        bindings.append(locks)
        bindings.append(reads.map(\.stream))
        bindings.append(reads.map(\.version))
        bindings.append(appends.map(\.statement.stream.rawValue))
        bindings.append(appends.map(\.version))
        bindings.append(appends.map { Int32($0.statement.ids.count) })
        bindings.append(appends.flatMap(\.statement.ids))
        bindings.append(appends.flatMap(\.statement.types))
        bindings.append(appends.flatMap(\.statement.versions))
        bindings.append(appends.flatMap(\.statement.payloads))
        bindings.append(appends.flatMap(\.statement.metadata))
        bindings.append(calls.map(\.function))
        bindings.append(calls.map(\.argument))
    }

    /// The parameter list of `apply_planned_writes`, numbered from `first` on: for the SQL of a statement that
    /// passes its planned writes on.
    public static func parameters(from first: Int) -> String {
        (first..<first + 13).map { "$\($0)" }.joined(separator: ", ")
    }

    /// What `apply_planned_writes` raises when a stream has moved on since the command read it (SE002), and what
    /// `append_events` raises for a batch partly stored already (SE001): either way nothing was written, and a
    /// transaction decides again (and answers the conflict as it always does).
    static let decideInATransaction: Set<String> = ["SE002", "SE001"]
}

/// A planned transaction cannot do this (its command reads or writes something besides the event store's
/// streams): the command must run in a real transaction.
public struct NeedsTransaction: Error {}

/// A planned transaction: nothing is read or written, the writes are recorded in ``PlannedWrites`` to be made by one
/// statement. What it cannot plan (an append at other than an exact version, the connection for the caller's own
/// statements) throws ``NeedsTransaction``.
final class PlannedTransaction: EventStoreTransaction {
    let logger: Logger
    let effects = TransactionEffects()
    private let planned = Mutex(PlannedWrites())
    private let turns: Turns<StreamName>
    /// How long it waits for a stream's turn at most: as long as the command holding it may take (the store's query
    /// deadline), after which that one has ended either way.
    let longestWait: Duration
    private let taken = Mutex<[StreamName]>([])

    init(logger: Logger, turns: Turns<StreamName>, longestWait: Duration) {
        self.logger = logger
        self.turns = turns
        self.longestWait = longestWait
    }

    func takeTurn(on stream: StreamName) async {
        let holding = taken.withLock { $0 }
        guard !holding.contains(stream) else { return }
        if await turns.enter(stream, waitingAtMost: holding.isEmpty ? longestWait : .zero) {
            taken.withLock { $0.append(stream) }
        }
    }

    /// The streams whose turns it holds.
    var turnsTaken: [StreamName] { taken.withLock { $0 } }

    /// Gives back the turns it took, once its statement has run (and what it committed is kept).
    func leaveTurns() {
        for stream in taken.withLock({ taken in defer { taken = [] }; return taken }) { turns.leave(stream) }
    }

    var writes: PlannedWrites { planned.withLock { $0 } }

    var connection: PostgresConnection { get throws { throw NeedsTransaction() } }

    /// Recorded, and answered as it will be written: the version is known, and the positions are placeholders that
    /// ``PlannedWrites`` replaces in the reply.
    @discardableResult
    func append(_ events: [NewEvent], to stream: StreamName, expectedVersion: ExpectedVersion) async throws -> AppendResult {
        let statement = try AppendEvents(events, to: stream, expectedVersion: expectedVersion)
        guard case .exact(let version) = expectedVersion else { throw NeedsTransaction() }
        effects.appended(to: stream)
        return planned.withLock { $0.append(statement, after: version) }
    }

    func lock(_ streams: [StreamName]) async throws {
        planned.withLock { for name in Set(streams).sorted().map(\.rawValue) { $0.lock(name) } }
    }

    /// Recorded, and made by the planned statement after the appends.
    func call(_ function: String, with argument: String) async throws {
        TransactionEffects.check(function: function)
        planned.withLock { $0.call(function, with: argument) }
    }

    /// Nothing is read: the stream is taken to end before `version`, which the planned writes check.
    func readStream(_ stream: StreamName, from version: Int64, limit: Int) async throws -> [RecordedEvent] {
        planned.withLock { $0.read(stream.rawValue, at: version - 1, locking: false) }
    }

    func readStreamLocked(_ stream: StreamName, from version: Int64) async throws -> [RecordedEvent] {
        planned.withLock { $0.read(stream.rawValue, at: version - 1, locking: true) }
    }
}

extension EventStore {
    /// Decides with `body` on a planned transaction (see ``PlannedWrites``), then runs the statement that `write`
    /// makes of its result and its planned writes: one round trip, and one commit.
    ///
    /// - Parameter applied: whether the statement made the writes, from its rows (it may find that it must not,
    ///   as a command whose idempotency key was used already).
    /// - Parameter committed: told of what was written once it is committed, before this process's waiters on the
    ///   streams it appended to are woken.
    /// - Returns: the result and the statement's rows; `nil` when nothing was written and the caller must decide
    ///   again in a transaction: `body` threw (it needed a transaction, or refused on a state that may be
    ///   stale), or a stream had moved on.
    public func runPlanned<Result: Sendable, Statement: PostgresPreparedStatement>(
        _ body: (Transaction) async throws -> Result,
        write: (Result, PlannedWrites) throws -> Statement,
        applied: ([Statement.Row]) -> Bool = { _ in true },
        committed: (Result, [Statement.Row]) -> Void = { _, _ in }
    ) async throws -> (result: Result, rows: [Statement.Row])? where Statement.Row: Sendable {
        let transaction = PlannedTransaction(logger: logger, turns: plannedTurns, longestWait: configuration.queryDeadline)
        defer { transaction.leaveTurns() }
        guard let result = try? await body(transaction) else { return nil }
        let planned = transaction.writes
        let statement = try write(result, planned)
        let rows: [Statement.Row]
        do {
            rows = try await withSpan(planned.spanName) { span in
                span.attributes["shop.events"] = planned.appends.reduce(0) { $0 + $1.statement.ids.count }
                return try await pooled(planned.spanName) { client in try await Self.all(client.execute(statement, logger: self.logger)) }
            }
        } catch let error as PSQLError where error.sqlState.map(PlannedWrites.decideInATransaction.contains) == true {
            return nil
        } catch where Self.isUnknownOutcome(error) {
            transaction.effects.ifOutcomeUnknown.run()
            throw error
        }
        // What the command remembers (the states it wrote) only when the writes were made.
        guard applied(rows) else { return (result, rows) }
        transaction.effects.committed()
        committed(result, rows)
        let streams = transaction.effects.appendedStreams
        if !streams.isEmpty { appended(to: streams) }
        return (result, rows)
    }
}
