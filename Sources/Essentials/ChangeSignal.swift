import Synchronization

/// A generation counter that tasks can wait on: `signal()` bumps it and wakes every waiter.
///
/// A waiter first reads ``generation``, then looks for work, and waits past that generation only if it
/// found none: a signal that arrives while it was looking is not lost.
public final class ChangeSignal: Sendable {
    private struct State {
        var generation: UInt64 = 0
        var nextWaiter = 0
        var waiters: [Int: CheckedContinuation<Void, Never>] = [:]
    }

    private let state = Mutex(State())

    public init() {}

    public var generation: UInt64 { state.withLock { $0.generation } }

    public func signal() {
        let waiters = state.withLock { state in
            state.generation &+= 1
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters.values { waiter.resume() }
    }

    /// Returns when the generation is no longer `seen`, or the task is cancelled.
    public func wait(past seen: UInt64) async {
        let id = state.withLock { state in
            defer { state.nextWaiter += 1 }
            return state.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { state in
                    if state.generation != seen || Task.isCancelled { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
        }
    }

    /// Returns when the generation is no longer `seen`, after `timeout`, or when the task is cancelled.
    public func wait(past seen: UInt64, timeout: Duration) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.wait(past: seen) }
            group.addTask { try? await Task.sleep(for: timeout) }
            await group.next()
            group.cancelAll()
        }
    }
}

/// A ``ChangeSignal`` per key, for as long as somebody watches that key: waiters on one thing (a stream, an order)
/// are woken by its changes alone, not by every change of everything.
public final class ChangeSignals<Key: Hashable & Sendable>: Sendable {
    private let watched = Mutex<[Key: (signal: ChangeSignal, watchers: Int)]>([:])

    public init() {}

    /// Runs `body` with `key`'s signal; the signal is forgotten when its last watcher is done.
    public func watching<Result>(_ key: Key, _ body: (ChangeSignal) async throws -> Result) async rethrows -> Result {
        let signal = watched.withLock { watched in
            let signal = watched[key]?.signal ?? ChangeSignal()
            watched[key] = (signal, (watched[key]?.watchers ?? 0) + 1)
            return signal
        }
        defer {
            watched.withLock { watched in
                guard let entry = watched[key] else { return }
                watched[key] = entry.watchers > 1 ? (entry.signal, entry.watchers - 1) : nil
            }
        }
        return try await body(signal)
    }

    /// Wakes the watchers of these keys.
    public func signal(_ keys: some Sequence<Key>) {
        for signal in watched.withLock({ watched in keys.compactMap { watched[$0]?.signal } }) { signal.signal() }
    }

    /// Wakes every watcher.
    public func signalAll() {
        for signal in watched.withLock({ $0.values.map(\.signal) }) { signal.signal() }
    }

    /// How many watch, over all keys.
    public var watchers: Int { watched.withLock { $0.values.reduce(0) { $0 + $1.watchers } } }
}
