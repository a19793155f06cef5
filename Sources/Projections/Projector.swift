import Essentials
import EventStore
import Foundation
import Telemetry
import Tracing
import GRDB
import Logging
import ServiceLifecycle
import Synchronization

/// Feeds a ``Projection`` from an event store: it follows the store from the view's checkpoint and applies
/// each batch of events and the new checkpoint in one SQLite transaction (WAL), so an event's effect lands
/// exactly once, also across crashes. Queries read the view through ``read(_:)`` while it is written.
///
/// A view is a folder of generations (see ``ViewFiles``): ``rebuild(progress:)`` builds the next one from the
/// first event while the current one keeps serving, then swaps it in atomically; readers and the projector
/// (in this process or another) move to it on their next access. A projection whose version changed is
/// rebuilt that way when its projector starts.
///
/// A `Service`: run it in the context's process beside the store.
public final class Projector: Service, Sendable {
    public let projection: any Projection
    public let store: EventStore
    let files: ViewFiles
    let batchSize: Int
    let rebuildBatchSize: Int
    let logger: Logger

    public struct Status: Sendable, Equatable {
        /// The generation being followed.
        public var generation: Int
        /// The position of the last event the view has applied (or skipped).
        public var position: Position
        /// Events handled since the projector started.
        public var eventsHandled: Int
        /// When it last handled a batch.
        public var lastBatchAt: Date?
        /// Events per second over its last batch.
        public var rate: Double
    }

    private let state: Mutex<Status>
    private let progress = ChangeSignal()
    /// The generation this process has open, and its connection pool.
    private let opened: Mutex<(generation: Int, pool: DatabasePool)>
    /// The serving generation was written by another version of the projection.
    private let isOutdated: Bool

    /// Opens the view's current generation in `<directory>/<name>/`, creating the first one if there is none.
    /// - Parameters:
    ///   - batchSize: the most events a batch applies while following the store (small: each batch's end is
    ///     when readers see its events).
    ///   - rebuildBatchSize: the same for rebuilds, verifies and copies, where nobody waits for a batch's end
    ///     and bigger batches mean fewer transactions (and more of an order's events in one).
    public init(_ projection: any Projection, store: EventStore, directory: URL, batchSize: Int = 500, rebuildBatchSize: Int = 5000,
                logger: Logger) throws {
        let files = try ViewFiles(directory: directory, name: projection.name)
        let generation: Int
        if let current = files.current() {
            generation = current
        } else {
            generation = (files.generations().max() ?? 0) + 1
            _ = try ViewFile.open(files.path(generation), projection)
            try files.setCurrent(generation)
        }
        let pool = try ViewFile.open(files.path(generation), projection)
        self.isOutdated = try pool.read { try ViewFile.version($0) } != projection.version
        self.projection = projection
        self.store = store
        self.files = files
        self.batchSize = batchSize
        self.rebuildBatchSize = max(1, rebuildBatchSize)
        self.logger = logger
        self.opened = Mutex((generation, pool))
        self.state = Mutex(Status(generation: generation, position: try pool.read(ViewFile.checkpoint), eventsHandled: 0,
                                  lastBatchAt: nil, rate: 0))
    }

    public var status: Status { state.withLock { $0 } }
    public var position: Position { state.withLock { $0.position } }
    /// The generation serving now.
    public var generation: Int { (try? current().generation) ?? opened.withLock { $0.generation } }

    /// The serving generation, opening it if it changed since this process last looked.
    func current() throws -> (generation: Int, pool: DatabasePool) {
        let pointed = files.current()
        return try opened.withLock { opened in
            if let pointed, pointed != opened.generation {
                opened = (pointed, try ViewFile.open(files.path(pointed), projection))
            }
            return opened
        }
    }

    /// Reads the view (its serving generation).
    public func read<T: Sendable>(_ body: @Sendable (Database) throws -> T) async throws -> T {
        try await current().pool.read(body)
    }

    /// Waits until the view has reached `position` (for a client that reads its own writes), at most
    /// `timeout`; says whether it did.
    public func wait(until position: Position, timeout: Duration) async -> Bool {
        await wait(for: { $0.position >= position }, timeout: timeout)
    }

    /// Waits until the status meets `condition`, at most `timeout`; says whether it did.
    public func wait(for condition: @Sendable (Status) -> Bool, timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while true {
            let seen = progress.generation
            if condition(status) { return true }
            let left = deadline - ContinuousClock.now
            guard left > .zero else { return false }
            await progress.wait(past: seen, timeout: left)
        }
    }

    /// How far behind the store the view is: events committed but not yet applied (counted up to 10,000, estimated
    /// beyond: ``EventStore/backlog(after:exactUpTo:)``), and the age of the oldest.
    public struct Lag: Sendable, Equatable, Codable {
        public let events: Int
        public let seconds: Double
    }

    public func lag() async throws -> Lag {
        let backlog = try await store.backlog(after: position)
        return Lag(events: backlog.events, seconds: backlog.oldest.map { max(0, Date().timeIntervalSince($0)) } ?? 0)
    }

    // MARK: Following the store

    public func run() async throws {
        await store.waitUntilRunning()
        await cancelWhenGracefulShutdown {
            if self.isOutdated {
                do {
                    self.logger.info("projection version changed: rebuilding while the old view serves",
                                     metadata: ["projection": "\(self.projection.name)"])
                    try await self.rebuild()
                } catch {
                    self.logger.error("rebuilding the projection failed", metadata: ["projection": "\(self.projection.name)", "error": "\(describe(error))"])
                }
            }
            while !Task.isCancelled {
                do {
                    try await self.follow()
                } catch {
                    if Task.isCancelled { return }
                    // The batch's transaction rolled back: nothing of it was applied. Start again from the checkpoint.
                    self.logger.error("projection failed; retrying from its checkpoint",
                                      metadata: ["projection": "\(self.projection.name)", "error": "\(describe(error))"])
                    try? await Task.sleep(for: .seconds(1))
                }
            }
        }
    }

    /// Follows the store into the serving generation until another generation is swapped in.
    private func follow() async throws {
        let (generation, pool) = try current()
        let start = try await pool.read(ViewFile.checkpoint)
        state.withLock {
            $0.generation = generation
            $0.position = start
        }
        progress.signal()
        // With a tracer, each batch is a span of the trace its first event's request began (linked to the others'),
        // which needs the events' metadata; without one, metadata is read only if the projection wants it.
        let traced = !(InstrumentationSystem.tracer is NoOpTracer)
        for try await batch in store.subscribeToAll(from: start, batchSize: batchSize, metadata: projection.readsMetadata || traced) {
            let (now, pool) = try current()
            if now != generation { return }  // swapped: follow the new generation from its own checkpoint
            let started = ContinuousClock.now
            let reached = try await withSpan("project \(projection.name)", context: Self.context(of: batch, traced: traced), ofKind: .consumer) { span in
                span.attributes["shop.events"] = batch.count
                if traced {
                    let traces = Set(batch.compactMap { $0.metadata.traceparent }).dropFirst()
                    for traceparent in traces.prefix(16) { span.addLink(SpanLink(context: .continuing(traceparent), attributes: [:])) }
                }
                return try await ViewFile.apply(batch, projection, to: pool)
            }
            let seconds = (ContinuousClock.now - started).seconds
            state.withLock { status in
                status.position = reached
                status.eventsHandled += batch.count
                status.lastBatchAt = Date()
                status.rate = seconds > 0 ? Double(batch.count) / seconds : 0
            }
            progress.signal()
        }
    }

    /// The trace a batch continues: its first event's request's.
    static func context(of batch: [RecordedEvent], traced: Bool) -> ServiceContext {
        guard traced, let traceparent = batch.lazy.compactMap({ $0.metadata.traceparent }).first else { return .topLevel }
        return .continuing(traceparent)
    }

    // MARK: Rebuilding

    /// How a rebuild is going.
    public struct RebuildProgress: Sendable {
        public let events: Int
        /// Events to apply in all, as counted when it began (more may arrive).
        public let total: Int
        public let position: Position
        public let elapsed: Duration
    }

    public struct RebuildResult: Sendable {
        public let generation: Int
        public let position: Position
        public let events: Int
        public let elapsed: Duration
    }

    /// Builds the next generation from the first event while the current one serves, checks it, and swaps it
    /// in. Only one rebuild of a view runs at a time, across processes: a second throws
    /// ``ViewError/rebuildRunning(_:)``.
    @discardableResult
    public func rebuild(progress report: (@Sendable (RebuildProgress) -> Void)? = nil) async throws -> RebuildResult {
        let lock = try files.lockForRebuild()
        defer { lock.release() }
        let generation = (files.generations().max() ?? 0) + 1
        files.remove(generation)
        let pool = try ViewFile.open(files.path(generation), projection)
        let started = ContinuousClock.now
        let (position, events) = try await Self.build(projection, from: store, into: pool, until: nil, batchSize: rebuildBatchSize, started: started, progress: report)
        try await ViewFile.check(pool)
        let previous = opened.withLock { opened in
            defer { opened = (generation, pool) }
            return opened.generation
        }
        try files.setCurrent(generation)
        // Keep the generation that served until now (readers may still be on it); remove older ones.
        for old in files.generations() where old < previous { files.remove(old) }
        logger.info("projection rebuilt", metadata: ["projection": "\(projection.name)", "generation": "\(generation)", "events": "\(events)"])
        return RebuildResult(generation: generation, position: position, events: events, elapsed: ContinuousClock.now - started)
    }

    /// Builds this view as it was at `position` into the file at `output` (a point-in-time copy; nothing is
    /// swapped). A position beyond the last committed event builds up to that event.
    @discardableResult
    public func build(until position: Position, output: URL, progress report: (@Sendable (RebuildProgress) -> Void)? = nil) async throws -> Position {
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: output.path + suffix) }
        let pool = try ViewFile.open(output.path, projection)
        let (reached, _) = try await Self.build(projection, from: store, into: pool, until: position, batchSize: rebuildBatchSize,
                                                started: .now, progress: report)
        try pool.close()
        return reached
    }

    /// Compares the serving view with one rebuilt into a scratch file up to the same position.
    public func verify(progress report: (@Sendable (RebuildProgress) -> Void)? = nil) async throws -> (matches: Bool, position: Position, live: String, rebuilt: String) {
        let (position, live) = try await current().pool.read { db in (try ViewFile.checkpoint(db), try ViewFile.checksum(db)) }
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("verify-\(projection.name)-\(UUID()).sqlite")
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: scratch.path + suffix) } }
        let pool = try ViewFile.open(scratch.path, projection)
        _ = try await Self.build(projection, from: store, into: pool, until: position, batchSize: rebuildBatchSize, started: .now, progress: report)
        let rebuilt = try await pool.read(ViewFile.checksum)
        try pool.close()
        return (live == rebuilt, position, live, rebuilt)
    }

    /// The position of the serving view's file as it is now: for another process than the one that follows the
    /// store (``position`` is what this process applied).
    public func servingPosition() async throws -> Position {
        try await current().pool.read(ViewFile.checkpoint)
    }

    /// A checksum of the serving view's content (see ``ViewFile/checksum(_:)``).
    public func contentChecksum() async throws -> String {
        try await current().pool.read(ViewFile.checksum)
    }

    /// Applies every event into `pool` from the first, up to `until` (or everything committed when it began).
    /// Three stages overlap: while one batch is written to SQLite, the next is decoded and the one after it read.
    static func build<P: Projection>(
        _ projection: P, from store: EventStore, into pool: DatabasePool, until limit: Position?, batchSize: Int,
        started: ContinuousClock.Instant, progress report: (@Sendable (RebuildProgress) -> Void)?
    ) async throws -> (Position, Int) {
        let last = try await store.lastCommittedPosition()
        let target = limit.map { min($0, last) } ?? last
        let total = try await store.backlog(after: .start).events
        var position = try await pool.read(ViewFile.checkpoint), events = 0
        var ahead = ReadAhead(projection, store: store, batchSize: batchSize, after: position)
        defer { ahead.cancel() }
        while position < target {
            var batch = try await ahead.next()
            if batch.events.isEmpty {
                // What is left is held back by an open transaction: wait for it as a subscription does.
                for try await waited in store.subscribeToAll(from: position, batchSize: batchSize, metadata: projection.readsMetadata) {
                    batch = try PreparedBatch(waited, for: projection)
                    break
                }
                guard let end = batch.last else { break }
                ahead.cancel()
                ahead = ReadAhead(projection, store: store, batchSize: batchSize, after: end)
            }
            guard batch.last != nil else { break }
            let wanted = batch.prefix(through: target)
            position = try await ViewFile.apply(wanted, projection, to: pool)
            events += wanted.events.count
            report?(RebuildProgress(events: events, total: total, position: position, elapsed: ContinuousClock.now - started))
            if wanted.events.count < batch.events.count { break }
        }
        return (position, events)
    }
}

/// Batches read and decoded ahead of the one being written: each read starts as soon as the read before it has
/// ended (it starts after that batch's last event), and each batch is decoded as soon as it is read, two batches
/// ahead at most.
struct ReadAhead<P: Projection> {
    private struct Stage {
        /// Where the read starts, and what it read.
        let read: Task<(after: Position, events: [RecordedEvent]), any Error>
        let prepared: Task<PreparedBatch<P>, any Error>
    }

    private let projection: P
    private let store: EventStore
    private let batchSize: Int
    private var stages: [Stage] = []

    init(_ projection: P, store: EventStore, batchSize: Int, after position: Position) {
        self.projection = projection
        self.store = store
        self.batchSize = batchSize
        stages.append(stage(after: { position }))
        stages.append(stage(following: stages[0]))
    }

    /// The next batch, decoded; the one after the batch ahead starts to be read.
    mutating func next() async throws -> PreparedBatch<P> {
        let current = stages.removeFirst()
        stages.append(stage(following: stages[stages.count - 1]))
        return try await current.prepared.value
    }

    func cancel() {
        for stage in stages {
            stage.read.cancel()
            stage.prepared.cancel()
        }
    }

    private func stage(following previous: Stage) -> Stage {
        stage(after: {
            let (after, events) = try await previous.read.value
            return events.last?.position ?? after
        })
    }

    private func stage(after start: @escaping @Sendable () async throws -> Position) -> Stage {
        let store = store, projection = projection, batchSize = batchSize
        let read = Task { () async throws -> (after: Position, events: [RecordedEvent]) in
            let after = try await start()
            return (after, try await store.readAll(after: after, limit: batchSize, metadata: projection.readsMetadata))
        }
        return Stage(read: read, prepared: Task { try PreparedBatch(try await read.value.events, for: projection) })
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

