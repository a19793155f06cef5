import Essentials
import EventStore
import Foundation
import Logging
import Ordering
import PostgresNIO
import Synchronization

/// The fulfilment saga's instances in Ordering's database (`Migrations/ordering/0002_fulfilment_sagas.sql`):
/// a row per instance holding ``Fulfilment/State``, and a timeline of every attempt.
///
/// Every change is made under the row's lock in one transaction that also appends the order's events and
/// writes the timeline: the order's status and the saga's state never disagree, whatever crashes.
public struct Sagas: Sendable {
    public let store: EventStore
    let orders: CommandHandler<Order>
    /// What this process last wrote of each instance whose order it changed.
    let recent = RecentWrites()

    public init(store: EventStore) {
        self.store = store
        self.orders = CommandHandler(store: store, codec: OrderingEvents.order)
    }

    /// An instance as this process wrote it, with its order as the same write left it: for a request waiting on the
    /// order, which that write wakes (it appended to the order's stream) and which can answer without a read.
    struct Written: Sendable {
        let instance: Instance
        let order: Order.State
        let orderVersion: Int64
    }

    /// The latest ``Written`` of the instances this process wrote lately (a bounded number, the oldest forgotten
    /// first), each kept once its write is committed and before the order's waiters here are woken.
    final class RecentWrites: Sendable {
        private let kept = Mutex<(byID: [String: Written], order: [String])>(([:], []))
        static let capacity = 4_096

        func keep(_ written: Written) {
            kept.withLock { kept in
                if let known = kept.byID[written.instance.id], known.orderVersion >= written.orderVersion { return }
                if kept.byID.updateValue(written, forKey: written.instance.id) == nil { kept.order.append(written.instance.id) }
                if kept.order.count > Self.capacity {
                    let gone = kept.order.prefix(kept.order.count - Self.capacity / 2)
                    for id in gone { kept.byID.removeValue(forKey: id) }
                    kept.order.removeFirst(gone.count)
                }
            }
        }

        func latest(_ id: String) -> Written? { kept.withLock { $0.byID[id] } }
    }

    public struct Instance: Sendable, Codable, Equatable {
        public let id: String
        public let status: Fulfilment.Status
        /// The step due next, or the one it parked on.
        public let step: Fulfilment.Step?
        public let state: Fulfilment.State
        public let dueAt: Date?
        public let version: Int64
        public let startedAt: Date
        public let updatedAt: Date
        /// The checkout's correlation id and trace context.
        public let correlationID: String?
        public let traceparent: String?

        /// What the saga's calls and events carry while it works this instance: the checkout's correlation id,
        /// and a new span of its trace.
        public var metadata: EventMetadata {
            EventMetadata(correlationID: correlationID ?? id, causationID: "saga:\(id)", traceparent: traceparent, actor: "saga:order-fulfilment")
        }
    }

    /// One line of an instance's timeline.
    public struct Entry: Sendable, Codable, Equatable {
        public let step: String
        public let attempt: Int
        public let outcome: StepOutcome
        public let reason: String?
        public let startedAt: Date
        public let finishedAt: Date
    }

    /// What an attempt of a step came to, or what changed an instance from outside, as its timeline records it.
    public enum StepOutcome: String, Sendable, Codable, CaseIterable {
        case succeeded, refused, failed, broken
        /// A customer's cancellation; an operator's retry.
        case cancelled, retried

        init(_ result: Fulfilment.Result) {
            switch result {
            case .succeeded: self = .succeeded
            case .refused: self = .refused
            case .failed: self = .failed
            case .broken: self = .broken
            }
        }
    }

    public enum SagaError: Error, Equatable, CustomStringConvertible {
        case unknown(String)
        case notParked(String, Fulfilment.Status)
        /// A row holds what this version of the service does not know: a newer one wrote it, or it was edited by hand.
        case unreadable(String, column: String, value: String)

        public var description: String {
            switch self {
            case .unknown(let id): "there is no saga '\(id.prefix(80))'"
            case .notParked(let id, let status): "saga \(id) is \(status), not parked: only a parked saga can be retried"
            case .unreadable(let id, let column, let value): "saga \(id) has a \(column) '\(value.prefix(40))' that this service does not know"
            }
        }
    }

    // MARK: Writing

    /// Starts an instance in the caller's transaction (the checkout's, which appends the order's first command
    /// with its placement), planned or not: `start_saga` (`Migrations/ordering/0005_one_statement_writes.sql`).
    func start(_ state: Fulfilment.State, in transaction: EventStore.Transaction) async throws {
        struct Start: Encodable {
            let id: String, status: String, step: String?, state: Fulfilment.State, correlationId: String?, traceparent: String?
        }
        let start = Start(id: state.order, status: state.status.rawValue, step: Fulfilment.next(state)?.rawValue, state: state,
                          correlationId: EventMetadata.current?.correlationID, traceparent: EventMetadata.current?.traceparent)
        // Encoded as the rows keep states (`json(_:)`: JSONEncoder's defaults).
        try await transaction.call("start_saga", with: String(decoding: try JSONEncoder().encode(start), as: UTF8.self))
    }

    /// The instance as ``start(_:in:)`` writes it (at version 1, due at once), for the worker that takes it from the
    /// checkout without reading it.
    func started(_ state: Fulfilment.State, at date: Date = Date()) -> Instance {
        Instance(id: state.order, status: state.status, step: Fulfilment.next(state), state: state, dueAt: date, version: 1,
                 startedAt: date, updatedAt: date, correlationID: EventMetadata.current?.correlationID,
                 traceparent: EventMetadata.current?.traceparent)
    }

    /// Locks an instance's row for the rest of the caller's transaction; says whether there is one.
    func lock(_ id: String, in transaction: EventStore.Transaction) async throws -> Bool {
        try await Self.load(id, on: transaction.connection, logger: transaction.logger, forUpdate: true) != nil
    }

    /// What was attempted, for the timeline.
    struct Attempt: Sendable, Encodable {
        let step: String, attempt: Int, outcome: StepOutcome, reason: String?, startedAt: Date
        /// When its answer came; `nil`: when it is written.
        var finishedAt: Date? = nil

        enum CodingKeys: CodingKey { case step, attempt, outcome, reason, startedAt, finishedAt }

        func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(step, forKey: .step)
            try container.encode(attempt, forKey: .attempt)
            try container.encode(outcome, forKey: .outcome)
            try container.encodeIfPresent(reason, forKey: .reason)
            try container.encode(startedAt.timeIntervalSince1970, forKey: .startedAt)
            try container.encodeIfPresent(finishedAt?.timeIntervalSince1970, forKey: .finishedAt)
        }
    }

    /// A change of an instance, as `write_saga` takes it (`Migrations/ordering/0007_saga_attempts.sql`): its new
    /// state, when it is due next, and the timeline's new entries; only at version `ifVersion` when it is given. Every path
    /// that changes an instance writes one of these, alone (``WriteSQL``) or with the order's events (``Advance``).
    struct Change: Sendable, Encodable {
        let id: String
        let status: Fulfilment.Status
        let step: Fulfilment.Step?
        let state: Fulfilment.State
        /// Seconds from now until it is due; `nil`: not due (finished, or parked).
        let delaySeconds: Double?
        let ifVersion: Int64?
        let attempts: [Attempt]

        init(_ transition: Fulfilment.Transition, of id: String, attempts: [Attempt], ifVersion: Int64?) {
            let state = transition.state
            self.id = id
            self.status = state.status
            self.step = Fulfilment.next(state) ?? state.parked?.step
            self.state = state
            self.delaySeconds = status.isFinal || status == .parked ? nil : (transition.retryAfter ?? .zero).seconds
            self.ifVersion = ifVersion
            self.attempts = attempts
        }

        /// As JSON, the state encoded as the rows keep it (JSONEncoder's defaults: see ``json(_:)``).
        var json: String { get throws { String(decoding: try JSONEncoder().encode(self), as: UTF8.self) } }
    }

    /// Changes an instance: `change` gets its freshest state under the row's lock; the new state, the order's
    /// command and the timeline entry are written in one transaction. Returns the instance as written.
    ///
    /// - Parameter known: the instance as its worker last wrote or read it, if it holds the instance's lock. The
    ///   change is then decided on that and written only if the row's version is still its version (a customer's
    ///   cancellation or an operator's retry changes it): no read first, and a single statement. When the row has
    ///   moved on, it is changed as without `known`.
    @discardableResult
    func update(
        _ id: String, attempt: Attempt?, known: Instance? = nil,
        _ change: @escaping @Sendable (Fulfilment.State) throws -> Fulfilment.Transition
    ) async throws -> Instance {
        try await update(id, attempts: attempt.map { [$0] } ?? [], known: known) { [try change($0)] }
    }

    /// ``update(_:attempt:known:_:)`` with the results of several attempts, one after the other: `change` gives the
    /// transition of each, in order; the order gets the command of each, and the instance the last one's state.
    @discardableResult
    func update(
        _ id: String, attempts: [Attempt], known: Instance?,
        _ change: @escaping @Sendable (Fulfilment.State) throws -> [Fulfilment.Transition]
    ) async throws -> Instance {
        if let known, let written = try await update(id, attempts: attempts, ifAt: known, change) { return written }
        return try await store.withTransaction { transaction in
            try await update(id, attempts: attempts, in: transaction, change)
        }
    }

    /// ``update(_:attempt:known:_:)`` in the caller's transaction, on the row as read under its lock.
    @discardableResult
    func update(
        _ id: String, attempt: Attempt?, in transaction: EventStore.Transaction,
        _ change: @Sendable (Fulfilment.State) throws -> Fulfilment.Transition
    ) async throws -> Instance {
        try await update(id, attempts: attempt.map { [$0] } ?? [], in: transaction) { [try change($0)] }
    }

    private func update(
        _ id: String, attempts: [Attempt], in transaction: EventStore.Transaction,
        _ change: @Sendable (Fulfilment.State) throws -> [Fulfilment.Transition]
    ) async throws -> Instance {
        let connection = try transaction.connection, logger = transaction.logger
        guard let current = try await Self.load(id, on: connection, logger: logger, forUpdate: true) else { throw SagaError.unknown(id) }
        let transitions = try change(current.state)
        let order = try await orderCommands(of: transitions, in: transaction)
        let write = try Self.write(Change(Self.last(transitions, of: current.state), of: id, attempts: attempts, ifVersion: nil))
        guard let written = try await Self.first(connection.execute(write, logger: logger)) else { throw SagaError.unknown(id) }
        keep(written, order, after: transaction)
        return written
    }

    /// Keeps `instance` in ``recent`` once `transaction` commits, if it changed the order.
    private func keep(_ instance: Instance, _ order: CommandHandler<Order>.Result?, after transaction: EventStore.Transaction) {
        guard let order, order.position != nil else { return }
        transaction.afterCommit { [recent] in recent.keep(Written(instance: instance, order: order.state, orderVersion: order.streamVersion)) }
    }

    /// The transition an instance ends with after `transitions` (none: it stays as it is).
    private static func last(_ transitions: [Fulfilment.Transition], of state: Fulfilment.State) -> Fulfilment.Transition {
        transitions.last ?? Fulfilment.Transition(state: state)
    }

    /// ``update(_:attempts:known:_:)`` on the version of `known`: one statement, planned with the order's commands on
    /// the order's kept state when there is one. `nil` (and nothing written) when the row is at another version.
    private func update(
        _ id: String, attempts: [Attempt], ifAt known: Instance, _ change: @Sendable (Fulfilment.State) throws -> [Fulfilment.Transition]
    ) async throws -> Instance? {
        let transitions = try change(known.state)
        let write = Change(Self.last(transitions, of: known.state), of: id, attempts: attempts, ifVersion: known.version)
        if let planned = try await store.runPlanned({ transaction in try await orderCommands(of: transitions, in: transaction) },
                                                    write: { _, writes in try Advance(change: write.json, writes: writes) },
                                                    applied: { !$0.isEmpty },
                                                    committed: { [recent] order, rows in
            guard let order, let instance = rows.first else { return }
            recent.keep(Written(instance: instance, order: order.state, orderVersion: order.streamVersion))
        }) {
            return planned.rows.first
        }
        // The order's stream had moved on: the same change, with the order's command decided in a transaction. The
        // row first (its lock, then the order's stream: the order cancellations take them in that order).
        struct MovedOn: Error {}
        do {
            return try await store.withTransaction { transaction in
                guard let written = try await Self.first(transaction.connection.execute(try Self.write(write), logger: transaction.logger)) else {
                    throw MovedOn()
                }
                keep(written, try await orderCommands(of: transitions, in: transaction), after: transaction)
                return written
            }
        } catch is MovedOn {
            return nil
        }
    }

    /// The order's commands of `transitions`, decided one after the other and appended at once; what they came to.
    private func orderCommands(of transitions: [Fulfilment.Transition], in transaction: EventStore.Transaction) async throws
        -> CommandHandler<Order>.Result? {
        let commands = transitions.compactMap(\.orderCommand)
        guard let state = transitions.last?.state, !commands.isEmpty else { return nil }
        let stream = try OrderingStreams.order(state.order)
        if commands.count == 1 {
            return try await orders.handle(commands[0], on: stream, in: transaction, metadata: Self.metadata(state))
        }
        return try await orders.handle(on: stream, in: transaction, metadata: Self.metadata(state)) { current in
            var order = current, events: [Order.Event] = []
            for command in commands {
                let decided = try Order.decide(command, order)
                order = Order.replay(decided, from: order)
                events += decided
            }
            return events
        }
    }

    private static func first(_ rows: some AsyncSequence<Instance, any Error>) async throws -> Instance? {
        for try await row in rows { return row }
        return nil
    }

    /// A ``Change``, alone (prepared: it runs after every step without an order command).
    enum WriteSQL: SagaSQL { static let sql = "SELECT \(Sagas.columns) FROM write_saga($1::jsonb)" }

    static func write(_ change: Change) throws -> Prepared<WriteSQL> { Prepared(argument: try change.json) }

    /// The statement of `SQL`, which takes one text argument and answers instances.
    struct Prepared<SQL: SagaSQL>: PostgresPreparedStatement {
        static var sql: String { SQL.sql }
        typealias Row = Instance

        let argument: String

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 1)
            bindings.append(argument)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> Row { try Sagas.instance(row) }
    }

    /// A ``Change`` and the order's planned events, in one statement: `advance_saga`.
    struct Advance: PostgresPreparedStatement {
        static let sql = "SELECT \(Sagas.columns) FROM advance_saga($1::jsonb, \(PlannedWrites.parameters(from: 2)))"
        typealias Row = Instance

        let change: String, writes: PlannedWrites

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 14)
            bindings.append(change)
            writes.bind(into: &bindings)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> Row { try Sagas.instance(row) }
    }

    /// Re-drives a parked instance (an operator's `shop-admin sagas retry`): due at once, with a fresh budget.
    @discardableResult
    public func retry(_ id: String) async throws -> Instance {
        try await update(id, attempt: Attempt(step: "operator", attempt: 1, outcome: .retried, reason: nil, startedAt: Date())) { state in
            guard state.status == .parked else { throw SagaError.notParked(id, state.status) }
            return Fulfilment.Transition(state: Fulfilment.retry(state))
        }
    }

    // MARK: Reading

    public func instance(_ id: String) async throws -> Instance? {
        try await store.withConnection { try await Self.load(id, on: $0, logger: store.logger, forUpdate: false) }
    }

    /// Instances, newest first; only those in `status` if given.
    public func list(status: Fulfilment.Status? = nil, limit: Int = 50) async throws -> [Instance] {
        try await store.withConnection { connection in
            let rows = try await connection.query("""
                SELECT \(unescaped: Self.columns) FROM sagas
                WHERE \(status?.rawValue)::text IS NULL OR status = \(status?.rawValue)
                ORDER BY started_at DESC, saga_id LIMIT \(Int64(limit))
                """, logger: store.logger)
            var instances: [Instance] = []
            for try await row in rows { instances.append(try Self.instance(row)) }
            return instances
        }
    }

    /// How many instances there are in each status.
    public func counts() async throws -> [Fulfilment.Status: Int] {
        try await store.withConnection { connection in
            var counts: [Fulfilment.Status: Int] = [:]
            let rows = try await connection.query("SELECT status, count(*)::bigint FROM sagas GROUP BY status", logger: store.logger)
            for try await (status, count) in rows.decode((String, Int64).self) {
                if let status = Fulfilment.Status(rawValue: status) { counts[status] = Int(count) }
            }
            return counts
        }
    }

    /// The instances due for longer than `seconds`, and since when the oldest is: work a running orchestrator would
    /// have taken up long ago (it looks every poll interval), so a sign that it has stopped.
    public func overdue(by seconds: Double) async throws -> (count: Int, since: Date?) {
        try await store.withConnection { connection in
            let rows = try await connection.query(
                "SELECT count(*)::bigint, min(due_at) FROM sagas WHERE due_at < now() - make_interval(secs => \(seconds))",
                logger: store.logger)
            for try await (count, since) in rows.decode((Int64, Date?).self) { return (Int(count), since) }
            return (0, nil)
        }
    }

    public func timeline(_ id: String) async throws -> [Entry] {
        try await store.withConnection { connection in
            let rows = try await connection.query("""
                SELECT step, attempt, outcome, reason, started_at, finished_at FROM saga_steps WHERE saga_id = \(id) ORDER BY id
                """, logger: store.logger)
            var entries: [Entry] = []
            for try await (step, attempt, outcome, reason, started, finished) in rows.decode((String, Int32, String, String?, Date, Date).self) {
                guard let known = StepOutcome(rawValue: outcome) else { throw SagaError.unreadable(id, column: "timeline outcome", value: outcome) }
                entries.append(Entry(step: step, attempt: Int(attempt), outcome: known, reason: reason, startedAt: started, finishedAt: finished))
            }
            return entries
        }
    }

    /// Takes an instance's session lock on `connection` and reads it, in one round trip (`claim_saga`); `nil`
    /// when another session holds it, or there is no such instance.
    func claim(_ id: String, on connection: PostgresConnection) async throws -> Instance? {
        let rows = try await connection.query("SELECT \(unescaped: Self.columns) FROM claim_saga(\(id))", logger: store.logger)
        for try await row in rows { return try Self.instance(row) }
        return nil
    }

    /// Instances due now, oldest first.
    func due(limit: Int, on connection: PostgresConnection) async throws -> [String] {
        let rows = try await connection.query("""
            SELECT saga_id FROM sagas WHERE due_at <= now() ORDER BY due_at LIMIT \(Int64(limit))
            """, logger: store.logger)
        var ids: [String] = []
        for try await id in rows.decode(String.self) { ids.append(id) }
        return ids
    }

    // MARK: Rows

    static let columns = "saga_id, status, step, state::text, due_at, version, started_at, updated_at, correlation_id, traceparent"

    static func load(_ id: String, on connection: PostgresConnection, logger: Logger, forUpdate: Bool) async throws -> Instance? {
        if forUpdate {
            for try await instance in try await connection.execute(Prepared<LockSQL>(argument: id), logger: logger) { return instance }
            return nil
        }
        let rows = try await connection.query("SELECT \(unescaped: columns) FROM sagas WHERE saga_id = \(id)", logger: logger)
        for try await row in rows { return try instance(row) }
        return nil
    }

    /// An instance, its row locked until the transaction ends (prepared: it runs before every change).
    enum LockSQL: SagaSQL { static let sql = "SELECT \(Sagas.columns) FROM sagas WHERE saga_id = $1 FOR UPDATE" }

    static func instance(_ row: PostgresRow) throws -> Instance {
        let (id, status, step, state, due, version, started, updated, correlation, traceparent) =
            try row.decode((String, String, String?, String, Date?, Int64, Date, Date, String?, String?).self)
        guard let known = Fulfilment.Status(rawValue: status) else { throw SagaError.unreadable(id, column: "status", value: status) }
        let next: Fulfilment.Step?
        switch step {
        case nil: next = nil
        case let step?:
            guard let known = Fulfilment.Step(rawValue: step) else { throw SagaError.unreadable(id, column: "step", value: step) }
            next = known
        }
        return Instance(id: id, status: known, step: next,
                        state: try JSONDecoder().decode(Fulfilment.State.self, from: Data(state.utf8)),
                        dueAt: due, version: version, startedAt: started, updatedAt: updated, correlationID: correlation, traceparent: traceparent)
    }

    static func json(_ state: Fulfilment.State) throws -> String {
        String(decoding: try JSONEncoder().encode(state), as: UTF8.self)
    }

    /// The metadata of the order commands the saga gives: the request's (at checkout) or the instance's (set
    /// by the orchestrator while it works it), as the saga.
    static func metadata(_ state: Fulfilment.State) -> EventMetadata {
        var metadata = EventMetadata.current ?? EventMetadata(correlationID: state.order)
        metadata.actor = "saga:order-fulfilment"
        return metadata
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

/// The SQL of a prepared statement of ``Sagas`` that takes one text argument.
protocol SagaSQL { static var sql: String { get } }
