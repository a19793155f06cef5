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
                do {
                    (batch, heldBack) = try await store.readAllOrHeldBack(after: position, limit: batchSize, metadata: metadata)
                } catch {
                    if Task.isCancelled { return nil }
                    throw error
                }
                let timeout: Duration
                if heldBack {
                    timeout = Swift.min(heldBackDelay, pollInterval)
                    // Capped: a transaction open for long must not double it past what a Duration holds.
                    heldBackDelay = Swift.min(heldBackDelay * 2, pollInterval)
                } else {
                    timeout = pollInterval
                    heldBackDelay = .milliseconds(5)
                }
                if batch.count < batchSize { waitBeforeReading = (generation, timeout) }
                if let last = batch.last {
                    position = last.position
                    return batch
                }
            }
            return nil
        }
    }
}
