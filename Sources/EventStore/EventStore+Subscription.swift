extension EventStore {
    /// Every event after `checkpoint`, in commit order: first those already stored (catch-up), then each
    /// new one as it commits (live). Elements are non-empty batches of at most `batchSize` events; a
    /// consumer that saves the last position of each batch it handled can resume exactly after it.
    ///
    /// The sequence ends (returns `nil`) when its task is cancelled. It throws when the database fails;
    /// the consumer resumes from its checkpoint.
    ///
    /// With `metadata: false` events come without their metadata (``RecordedEvent/metadata`` is empty), which
    /// spares the database and the reader its conversion: for readers that never look at it.
    public func subscribeToAll(from checkpoint: Position = .start, batchSize: Int = 500, metadata: Bool = true) -> AllEventsSubscription {
        AllEventsSubscription(store: self, checkpoint: checkpoint, batchSize: max(1, batchSize), metadata: metadata)
    }
}

public struct AllEventsSubscription: AsyncSequence, Sendable {
    public typealias Element = [RecordedEvent]

    let store: EventStore
    let checkpoint: Position
    let batchSize: Int
    let metadata: Bool

    public func makeAsyncIterator() -> Iterator {
        Iterator(store: store, position: checkpoint, batchSize: batchSize, metadata: metadata)
    }

    public struct Iterator: AsyncIteratorProtocol {
        let store: EventStore
        /// The position of the last event handed out.
        public private(set) var position: Position
        let batchSize: Int
        let metadata: Bool
        /// After a batch that held everything readable: wait past this generation (read before that batch's
        /// query) before looking again, and how long at most (shorter while events are held back).
        private var waitBeforeReading: (generation: UInt64, timeout: Duration)?
        /// While events are held back by an open transaction, look again soon (5 ms, doubling up to the poll
        /// interval, and no sooner than the store's read interval): its end may bring no notification (a
        /// rollback, or a transaction that appended nothing).
        private var heldBackDelay = Duration.milliseconds(5)
        /// When the last read started.
        private var lastRead: ContinuousClock.Instant?
        /// Since when reads have found events held back at `position` (nil while nothing is), and whether that
        /// was logged.
        private var heldBackSince: ContinuousClock.Instant?
        private var heldBackLogged = false
        /// How long events may be held back before reads look past the transactions of other databases (which
        /// costs each read a look at the server's sessions): longer than an append takes, so that a subscriber
        /// keeping up under load never pays it.
        static let lookPastOtherDatabasesAfter = Duration.milliseconds(50)
        /// How long events may be held back before it is logged, with the session that holds them.
        static let logHeldBackAfter = Duration.seconds(10)

        init(store: EventStore, position: Position, batchSize: Int, metadata: Bool) {
            self.store = store
            self.position = position
            self.batchSize = batchSize
            self.metadata = metadata
        }

        /// One query per wake-up: it reads the batch and whether anything after it is held back; a batch smaller
        /// than `batchSize` was everything readable, so the next call waits for a wake-up before it reads again,
        /// and at least the store's `readInterval` after this read (wake-ups meanwhile are read together).
        public mutating func next() async throws -> [RecordedEvent]? {
            let pollInterval = store.configuration.pollInterval
            while !Task.isCancelled {
                if let (generation, timeout) = waitBeforeReading {
                    waitBeforeReading = nil
                    await store.eventsAvailable.wait(past: generation, timeout: timeout)
                    // A burst of appends is read together: not sooner than `readInterval` after the last read.
                    if let lastRead, case let next = lastRead + store.configuration.readInterval, ContinuousClock.now < next {
                        try? await Task.sleep(until: next, clock: .continuous)
                    }
                    if Task.isCancelled { return nil }
                }
                lastRead = ContinuousClock.now
                // Read the generation before looking, so that a wake-up during the read is not lost.
                let generation = store.eventsAvailable.generation
                let (batch, heldBack): ([RecordedEvent], Bool)
                let pastOtherDatabases = heldBackSince.map { ContinuousClock.now - $0 >= Self.lookPastOtherDatabasesAfter } ?? false
                do {
                    (batch, heldBack) = try await store.readAllOrHeldBack(
                        after: position, limit: batchSize, metadata: metadata, pastOtherDatabases: pastOtherDatabases)
                } catch {
                    if Task.isCancelled { return nil }
                    throw error
                }
                let timeout: Duration
                if heldBack && batch.isEmpty {
                    timeout = Swift.min(heldBackDelay, pollInterval)
                    // Capped: a transaction open for long must not double it past what a Duration holds.
                    heldBackDelay = Swift.min(heldBackDelay * 2, pollInterval)
                    let since = heldBackSince ?? ContinuousClock.now
                    heldBackSince = since
                    if !heldBackLogged, ContinuousClock.now - since >= Self.logHeldBackAfter {
                        heldBackLogged = true
                        await logHeldBack(since: since)
                    }
                } else {
                    timeout = heldBack ? .milliseconds(5) : pollInterval
                    heldBackDelay = .milliseconds(5)
                    if heldBackLogged { store.logger.info("reading all events goes on", metadata: ["position": "\(position)"]) }
                    heldBackSince = heldBack ? ContinuousClock.now : nil
                    heldBackLogged = false
                }
                if batch.count < batchSize { waitBeforeReading = (generation, timeout) }
                if let last = batch.last {
                    position = last.position
                    return batch
                }
            }
            return nil
        }

        /// Says that reading has been held back at `position` since `since`, and by which session.
        private func logHeldBack(since: ContinuousClock.Instant) async {
            let holder = (try? await store.holdingBack()).flatMap { $0 }
            store.logger.warning("reading all events is held back by an open transaction of this database", metadata: [
                "position": "\(position)", "seconds": "\((ContinuousClock.now - since).components.seconds)",
                "holder": "\(holder.map(\.description) ?? "a transaction that has ended or cannot be seen")",
            ])
        }
    }
}
