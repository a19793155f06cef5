import EventStore
import Foundation
import Logging
import Metrics
import Ordering
import PostgresNIO
import ServiceKit
import Telemetry
import Tracing
import ServiceLifecycle
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Runs the fulfilment saga inside the Ordering service: finds the instances that are due, works each one
/// step after step (``FulfilmentSteps``), and records every result through ``Sagas``.
///
/// Several orchestrators (in several processes) may work one database. Each instance is worked by one of them
/// at a time: a worker holds a session-level advisory lock on the instance, taken on one connection that it
/// keeps for as long as it runs. A session lock needs no transaction (so it never holds back the event store's
/// readers, as an open transaction would) and it dies with its connection: a killed worker's instances are
/// free at once, and the next poll of a live worker takes them over.
public final class FulfilmentOrchestrator: Service, Sendable {
    public struct Configuration: Sendable {
        public var retry: Fulfilment.RetryPolicy
        /// How often it looks for due instances when nothing wakes it.
        public var pollInterval: Duration
        /// The most instances it works at once.
        public var concurrency: Int
        /// Told when a worker starts (`true`) and ends (`false`) a step of an instance: for tests and probes.
        public var observer: (@Sendable (_ saga: String, _ step: Fulfilment.Step, _ starting: Bool) -> Void)?

        public init(retry: Fulfilment.RetryPolicy = .init(), pollInterval: Duration = .milliseconds(500), concurrency: Int = 64,
                    observer: (@Sendable (String, Fulfilment.Step, Bool) -> Void)? = nil) {
            self.retry = retry
            self.pollInterval = pollInterval
            self.concurrency = max(1, concurrency)
            self.observer = observer
        }
    }

    let sagas: Sagas
    let steps: FulfilmentSteps
    let configuration: Configuration
    let logger: Logger
    /// Step durations and retries.
    let metrics: ServiceMetrics?
    /// Wakes the poller: a checkout started an instance, a cancellation or a retry made one due.
    let wake = ChangeSignal()
    private let working = Mutex<Set<String>>([])
    /// Instances handed over by the checkouts that started them, claimed before the next look for due ones.
    private let handed = Mutex<[String]>([])

    public init(sagas: Sagas, steps: FulfilmentSteps, configuration: Configuration = .init(), logger: Logger, metrics: ServiceMetrics? = nil) {
        self.sagas = sagas
        self.steps = steps
        self.configuration = configuration
        self.logger = logger
        self.metrics = metrics
        // Instances by status, and the parked count an operator watches, at every scrape.
        metrics?.onScrape { [sagas] metrics in
            guard let counts = try? await sagas.counts() else { return }
            for status in Fulfilment.Status.allCases {
                metrics.gauge("saga_instances", [("status", status.rawValue)]).record(counts[status] ?? 0)
            }
            if let overdue = try? await sagas.overdue(by: Self.overdueAfter) { metrics.gauge("saga_instances_overdue").record(overdue.count) }
        }
    }

    /// How long an instance may stay due before readiness says the orchestrator has stalled: many poll intervals,
    /// and longer than a step's deadline.
    static let overdueAfter = 60.0

    /// What readiness says while instances stay due for longer than ``overdueAfter`` (nobody works them: this
    /// orchestrator has stopped, and no other has taken them over), or nil.
    @Sendable public func stall() async -> Problem? {
        guard let overdue = try? await sagas.overdue(by: Self.overdueAfter), overdue.count > 0 else { return nil }
        let since = overdue.since.map { " (the oldest since \(Int(Date().timeIntervalSince($0))) s)" } ?? ""
        logger.error("the saga orchestrator is not working due sagas", metadata: ["overdue": "\(overdue.count)"])
        return Problem(.serviceUnavailable, rule: "sagas-overdue", title: "Not ready: sagas are not being worked",
                       detail: "\(overdue.count == 1 ? "1 saga has" : "\(overdue.count) sagas have") been due for more than \(Int(Self.overdueAfter)) s\(since)",
                       headers: [.retryAfter: "1"])
    }

    /// An instance may be due: look now rather than at the next poll.
    public func poke() { wake.signal() }

    /// An instance was just started (its checkout committed): claim it at once, without looking for it among the
    /// due ones. If another worker claims it first, that one works it.
    public func take(_ id: String) {
        // Bounded: past it (a worker that cannot keep up, or lost its connection) the instances wait to be found due.
        handed.withLock { if $0.count < 1_000 { $0.append(id) } }
        wake.signal()
    }

    public func run() async throws {
        await sagas.store.waitUntilRunning()
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await self.workWhileConnected()
                } catch {
                    if Task.isCancelled { return }
                    // The lock connection failed: its locks are gone, and every worker was cancelled with it.
                    self.logger.error("the saga orchestrator lost its lock connection; starting again",
                                      metadata: ["error": "\(describe(error))"])
                    try? await Task.sleep(for: .seconds(1))
                }
            }
        }
    }

    /// Polls for due instances and works each in a child task while it holds the instance's lock on `locks`: a
    /// connection of the orchestrator's own, not the pool's, since ``bounded(_:limit:logger:_:)`` may close it.
    private func workWhileConnected() async throws {
        try await sagas.store.withDedicatedConnection { locks in
            try await withThrowingDiscardingTaskGroup { group in
                /// Claims `id` (locked, and read after the lock: what its previous holder committed is in it) and works it.
                func claim(_ id: String) async throws {
                    guard working.withLock({ $0.insert(id).inserted }) else { return }
                    let claimed: Sagas.Instance?
                    do {
                        claimed = try await Self.bounded(locks, logger: logger) { try await self.sagas.claim(id, on: locks) }
                    } catch {
                        // Not worked here: it must not stay marked as worked (it was never looked at again).
                        _ = working.withLock { $0.remove(id) }
                        throw error
                    }
                    guard let instance = claimed else {
                        _ = working.withLock { $0.remove(id) }
                        return
                    }
                    group.addTask {
                        defer { self.finished(id) }
                        await self.work(id, claimed: instance)
                        // Bounded as well: stopped meanwhile, the orchestrator closes the connection instead, which
                        // gives back every lock it holds (a query on a closed connection may never answer).
                        try await Self.bounded(locks, logger: self.logger) { try await Self.unlock(id, on: locks, logger: self.logger) }
                    }
                }
                var lastLook = ContinuousClock.now - configuration.pollInterval
                while !Task.isCancelled {
                    let seen = wake.generation
                    // The handed over first, at once: nothing to look for.
                    let free = max(0, configuration.concurrency - working.withLock { $0.count })
                    let taken = handed.withLock { handed in defer { handed.removeFirst(min(free, handed.count)) }; return handed.prefix(free) }
                    for id in taken { try await claim(id) }
                    // Then the due ones: at every other wake-up, and at least once a poll interval however busy.
                    let room = configuration.concurrency - working.withLock { $0.count }
                    if room > 0, taken.isEmpty || ContinuousClock.now - lastLook >= configuration.pollInterval {
                        lastLook = ContinuousClock.now
                        for id in try await Self.bounded(locks, logger: logger, { try await self.sagas.due(limit: room, on: locks) }) {
                            try await claim(id)
                        }
                    }
                    await wake.wait(past: seen, timeout: configuration.pollInterval)
                }
            }
        }
    }

    private func finished(_ id: String) {
        working.withLock { _ = $0.remove(id) }
        wake.signal()  // room for one more
    }

    /// Works one instance, which this worker holds (`claimed`: as read once its lock was taken), until it is
    /// finished, parked, or waiting for a retry further off than a poll.
    func work(_ id: String, claimed: Sagas.Instance? = nil) async {
        var current = claimed
        while !Task.isCancelled {
            do {
                // Read under the lock (what the previous holder committed is visible), then go on with what this
                // worker wrote. A cancellation that lands meanwhile is seen at the next write, which finds the row
                // at another version and decides again on it: at worst one more forward step is done, and then undone.
                if current == nil { current = try await sagas.instance(id) }
                guard let instance = current, let due = instance.dueAt else { return }
                let wait = due.timeIntervalSinceNow
                if wait > 0 {
                    guard wait < configuration.pollInterval.seconds * 4 else { return }
                    try await Task.sleep(for: .seconds(wait))
                    current = nil
                    continue
                }
                guard let step = Fulfilment.next(instance.state) else {
                    try await sagas.update(id, attempt: nil, known: instance) { Fulfilment.Transition(state: $0) }  // marks it finished
                    return
                }
                current = try await run(step, of: instance)
            } catch {
                if Task.isCancelled { return }
                logger.error("working a saga failed; it stays due", metadata: ["saga": "\(id)", "error": "\(describe(error))"])
                try? await Task.sleep(for: configuration.pollInterval)
                return
            }
        }
    }

    /// Performs one attempt of `step` and records its result, in a span of the checkout's trace; the step's calls
    /// and the events it leads to carry the checkout's correlation id and trace.
    private func run(_ step: Fulfilment.Step, of instance: Sagas.Instance) async throws -> Sagas.Instance {
        let id = instance.id, attempt = instance.state.failures + 1, started = Date()
        return try await withSpan("saga \(step)", context: .continuing(instance.traceparent), ofKind: .internal) { span in
            span.attributes["shop.order"] = id
            var metadata = instance.metadata
            metadata.traceparent = span.context.traceContext?.traceparent ?? instance.traceparent
            return try await EventMetadata.$current.withValue(metadata) {
                configuration.observer?(id, step, true)
                let result = await steps.perform(step, for: instance.state)
                configuration.observer?(id, step, false)
                CrashPoint.reached("after-\(step)")
                let policy = configuration.retry
                let written = try await sagas.update(id, attempt: .init(step: step.rawValue, attempt: attempt, outcome: result.outcome,
                                                                         reason: result.reason, startedAt: started), known: instance) { fresh in
                    Fulfilment.record(result, of: step, in: fresh, policy: policy)
                }
                log(id, step, attempt, result, written, took: Date().timeIntervalSince(started))
                if result.outcome != "succeeded" { span.setStatus(.init(code: .error)) }
                return written
            }
        }
    }

    private func log(_ id: String, _ step: Fulfilment.Step, _ attempt: Int, _ result: Fulfilment.Result, _ written: Sagas.Instance,
                     took seconds: Double) {
        let current = EventMetadata.current
        var metadata: Logger.Metadata = ["order": "\(id)", "step": "\(step)", "attempt": "\(attempt)", "outcome": "\(result.outcome)",
                                         "status": "\(written.status)", "correlation_id": "\(current?.correlationID ?? id)",
                                         "trace_id": "\(TraceContext(traceparent: current?.traceparent)?.traceID ?? "")",
                                         "duration_ms": "\(Int((seconds * 1000).rounded()))"]
        metrics?.timer("saga_step_duration_seconds", [("step", step.rawValue), ("outcome", result.outcome)])
            .recordNanoseconds(Int64(seconds * 1e9))
        if result.outcome == "failed" { metrics?.counter("saga_step_retries_total", [("step", step.rawValue)]).increment() }
        if let reason = result.reason { metadata["reason"] = "\(reason)" }
        switch written.status {
        case .parked: logger.error("saga parked: an operator must look", metadata: metadata)
        case _ where result.outcome == "failed": logger.warning("saga step failed", metadata: metadata)
        default: logger.info("saga step done", metadata: metadata)
        }
    }

    // MARK: Locks

    struct LockConnectionStalled: Error, CustomStringConvertible {
        var description: String { "a query on the lock connection did not answer in time; the connection was closed" }
    }

    /// Runs `body` on the lock connection, and gives up on it if it does not answer within `limit`, or when the
    /// orchestrator is stopped meanwhile: the connection is closed (which releases its locks) and the query is left
    /// behind. A connection the server terminated (PostgreSQL gone) can leave a query waiting for ever, which held
    /// the graceful shutdown; closing the connection does not always end that wait, so nothing waits for it.
    static func bounded<Result: Sendable>(
        _ connection: PostgresConnection, limit: Duration = .seconds(10), logger: Logger, _ body: @escaping @Sendable () async throws -> Result
    ) async throws -> Result {
        let outcome = Outcome<Result>()
        _ = Task { do { outcome.finish(.success(try await body())) } catch { outcome.finish(.failure(error)) } }
        let watchdog = Task {
            try? await Task.sleep(for: limit)
            if Task.isCancelled { return }
            logger.warning("the saga orchestrator's lock connection does not answer; closing it")
            outcome.finish(.failure(LockConnectionStalled()))
            try? await connection.close()
        }
        defer { watchdog.cancel() }
        return try await withTaskCancellationHandler {
            try await outcome.value()
        } onCancel: {
            outcome.finish(.failure(CancellationError()))
            Task { try? await connection.close() }
        }
    }

    /// Advisory lock space of the saga instances (the event store uses 24158, idempotency keys 24159); taken by
    /// `claim_saga` (`Migrations/ordering/0004_lock_saga.sql`).
    static let lockSpace: Int32 = 24160

    static func unlock(_ id: String, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.run("SELECT pg_advisory_unlock(\(lockSpace), hashtext(\(id)))", logger: logger)
    }
}

extension Fulfilment.Result {
    var outcome: String {
        switch self {
        case .succeeded: "succeeded"
        case .refused: "refused"
        case .failed: "failed"
        case .broken: "broken"
        }
    }

    var reason: String? {
        switch self {
        case .succeeded: nil
        case .refused(let reason), .failed(let reason), .broken(let reason): reason
        }
    }
}

/// Fault injection for the crash tests: `SHOP_CRASH_AT=<point>` makes the process kill itself (SIGKILL, as
/// `kill -9` would) when it reaches that point, for example `after-reserve-stock`: the step was done by the
/// other context, and its result not yet recorded here.
enum CrashPoint {
    static let armed = ProcessInfo.processInfo.environment["SHOP_CRASH_AT"]

    static func reached(_ point: String) {
        guard let armed, armed == point else { return }
        kill(getpid(), SIGKILL)
    }
}
