import Synchronization

/// One holder per key at a time, within this process: ``enter(_:waitingAtMost:)`` takes a key's turn, waiting while
/// another task holds it; ``leave(_:)`` gives it to the next. Not a lock of anything outside the process: for work
/// that is correct without it, and cheaper or kinder with it (one request per idempotency key, one planned command
/// per stream).
public final class Turns<Key: Hashable & Sendable>: Sendable {
    /// Each key held, with the signal its holder gives when it lets go.
    private let held = Mutex<[Key: ChangeSignal]>([:])

    public init() {}

    /// Takes `key`'s turn, waiting at most `limit` while another holds it; `false` if it did not get it in time (or
    /// the task was cancelled).
    public func enter(_ key: Key, waitingAtMost limit: Duration) async -> Bool {
        let deadline = ContinuousClock.now + limit
        while true {
            let busy: (signal: ChangeSignal, seen: UInt64)? = held.withLock { held in
                guard let ended = held[key] else {
                    held[key] = ChangeSignal()
                    return nil
                }
                return (ended, ended.generation)
            }
            guard let busy else { return true }
            let left = deadline - ContinuousClock.now
            guard left > .zero, !Task.isCancelled else { return false }
            await busy.signal.wait(past: busy.seen, timeout: left)
        }
    }

    /// Gives `key`'s turn back (taken with ``enter(_:waitingAtMost:)``).
    public func leave(_ key: Key) {
        held.withLock { $0.removeValue(forKey: key) }?.signal()
    }
}
