import Essentials
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
    /// Instances handed over by the checkouts that started them, worked before the next look for due ones: as the
    /// checkout wrote them when it claimed them ahead (``claimAhead(_:)``) on the lock connection of that generation.
    private let handed = Mutex<[(id: String, claimed: (instance: Sagas.Instance, generation: Int)?)]>([])
    /// The lock connection while there is one, and which one it is (a count of connections made).
    private let lockConnection = Mutex<(connection: PostgresConnection, generation: Int)?>(nil)
    private let generations = Atomic<Int>(0)

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

    /// The lock of an instance that a checkout is about to start, taken on the lock connection while the checkout's
    /// transaction runs (the lock needs no row): once the checkout commits, the instance is worked at once, without a
    /// round trip to claim it (``take(_:claimed:as:)``); if the checkout does not start it, ``giveBack(_:)``. `nil` when
    /// there is no room, no lock connection, or another worker holds the lock: the instance is then claimed as usual.
    public func claimAhead(_ id: String) async -> Claim? {
        guard let (connection, generation) = lockConnection.withLock({ $0 }),
              working.withLock({ $0.count < configuration.concurrency && $0.insert(id).inserted }) else { return nil }
        do {
            let locked = try await Self.bounded(connection, logger: logger) {
                let rows = try await connection.query("SELECT pg_try_advisory_lock(\(Self.lockSpace), hashtext(\(id)))", logger: self.logger)
                for try await locked in rows.decode(Bool.self) { return locked }
                return false
            }
            if locked { return Claim(id: id, generation: generation) }
        } catch {
            logger.warning("an instance could not be claimed ahead of its checkout", metadata: ["saga": "\(id)", "error": "\(describe(error))"])
        }
        finished(id)
        return nil
    }

    /// An instance's lock, taken ahead of its checkout.
    public struct Claim: Sendable {
        let id: String
        let generation: Int
    }

    /// A lock taken ahead of a checkout that did not start its instance (refused, replayed, failed).
    public func giveBack(_ claim: Claim?) {
        guard let claim else { return }
        Task {
            if let (connection, generation) = lockConnection.withLock({ $0 }), generation == claim.generation {
                try? await Self.bounded(connection, logger: logger) { try await Self.unlock(claim.id, on: connection, logger: self.logger) }
            }
            finished(claim.id)
        }
    }

    /// An instance was just started (its checkout committed): work it at once, without looking for it among the due
    /// ones; with `claimed`, as the checkout wrote it, without claiming it. Otherwise, if another worker claims it
    /// first, that one works it.
    public func take(_ id: String, claimed: Claim? = nil, as instance: Sagas.Instance? = nil) {
        let handover = claimed.flatMap { claim in instance.map { (instance: $0, generation: claim.generation) } }
        // Bounded: past it (a worker that cannot keep up, or lost its connection) the instances wait to be found due.
        let taken = handed.withLock { handed in
            guard handed.count < 1_000 else { return false }
            handed.append((id, handover))
            return true
        }
        if !taken || handover == nil { giveBack(claimed) }
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
            let generation = generations.add(1, ordering: .relaxed).newValue
            lockConnection.withLock { $0 = (locks, generation) }
            defer { lockConnection.withLock { $0 = nil } }
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
                    start(id, instance)
                }
                /// Works `id`, claimed on `locks`, in a child task; then gives its lock back.
                func start(_ id: String, _ instance: Sagas.Instance) {
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
                    // (Those claimed ahead hold their room already.)
                    let taken = handed.withLock { handed in
                        let plain = handed.filter { $0.claimed == nil }
                        defer { handed = Array(plain.dropFirst(free)) }
                        return handed.filter { $0.claimed != nil } + plain.prefix(free)
                    }
                    for (id, claimed) in taken {
                        if let claimed, claimed.generation == generation {
                            start(id, claimed.instance)
                            continue
                        }
                        // Claimed ahead on a connection since lost (its lock went with it): claimed again.
                        if claimed != nil { finished(id) }
                        try await claim(id)
                    }
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
}
