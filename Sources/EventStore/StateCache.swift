import Synchronization

/// Streams' states as of a version, kept between commands so that a command on a long stream (a popular
/// product's stock, a regular customer's cart) reads and folds only the events appended since, not the whole
/// stream again: without it, every command on such a stream costs more than the one before.
///
/// It holds only what is committed (``EventStore/Transaction/afterCommit(_:)``), and events never change once
/// committed, so an entry is never wrong, only behind: whoever uses one reads the events after its version.
/// Other processes' appends are read that way too; nothing needs invalidating.
///
/// Bounded: two generations of at most `capacity / 2` streams each. When the young one is full it becomes the
/// old one, and the old one is dropped; a stream found in the old generation moves back to the young one.
/// So the streams in use stay, and those not touched for a generation go.
public final class StateCache<State: Sendable>: Sendable {
    public struct Entry: Sendable {
        public let state: State
        public let version: Int64

        public init(state: State, version: Int64) {
            self.state = state
            self.version = version
        }
    }

    private struct Generations {
        var young: [StreamName: Entry] = [:]
        var old: [StreamName: Entry] = [:]
    }

    private let generations = Mutex(Generations())
    private let generationSize: Int

    public init(capacity: Int = 10_000) {
        generationSize = max(1, capacity / 2)
    }

    public func entry(_ stream: StreamName) -> Entry? {
        generations.withLock { generations in
            if let entry = generations.young[stream] { return entry }
            guard let entry = generations.old.removeValue(forKey: stream) else { return nil }
            Self.insert(entry, for: stream, into: &generations, size: generationSize)
            return entry
        }
    }

    /// Keeps `entry` unless a later version of the stream is kept already.
    public func keep(_ entry: Entry, for stream: StreamName) {
        generations.withLock { generations in
            let kept = generations.young[stream] ?? generations.old[stream]
            guard (kept?.version ?? -1) < entry.version else { return }
            generations.old[stream] = nil
            Self.insert(entry, for: stream, into: &generations, size: generationSize)
        }
    }

    /// Forgets what is kept of `stream`: the next command reads it from the store.
    public func forget(_ stream: StreamName) {
        generations.withLock { generations in
            generations.young[stream] = nil
            generations.old[stream] = nil
        }
    }

    public var count: Int { generations.withLock { $0.young.count + $0.old.count } }

    private static func insert(_ entry: Entry, for stream: StreamName, into generations: inout Generations, size: Int) {
        if generations.young[stream] == nil, generations.young.count >= size {
            generations.old = generations.young
            generations.young = [:]
        }
        generations.young[stream] = entry
    }
}
