import EventStore
import Foundation
import Logging
import ServiceKit
import ServiceLifecycle
import Synchronization

/// Forgets idempotency keys once they are older than `window`, so that the table (and its index) holds a window's
/// keys, not the whole history's. Every `interval` it deletes the expired keys oldest first, `batch` at a time (short
/// transactions, no long lock). A request retried with a key after its window runs again as a new request: the
/// window must outlast every client's and every saga's retries (the saga parks a step after minutes; an operator
/// re-drives it within days), hence 30 days by default.
///
/// A sweep that keeps failing is said in the logs at each round and in `/health/ready` (``check()``) once three
/// rounds in a row have failed.
public final class IdempotencyKeyRetention: Service, Sendable {
    public static let defaultWindow: Duration = .seconds(30 * 24 * 3600)

    let store: EventStore
    let window: Duration, interval: Duration, batch: Int
    private let failures = Mutex<(count: Int, last: String?)>((0, nil))

    public init(store: EventStore, window: Duration = defaultWindow, interval: Duration = .seconds(3600), batch: Int = 5_000) {
        self.store = store
        self.window = window
        self.interval = interval
        self.batch = max(1, batch)
    }

    public func run() async {
        await store.waitUntilRunning()
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    let forgotten = try await self.sweep()
                    self.failures.withLock { $0 = (0, nil) }
                    if forgotten > 0 {
                        self.store.logger.info("idempotency keys forgotten", metadata: ["keys": "\(forgotten)", "window": "\(self.window)"])
                    }
                } catch {
                    let count = self.failures.withLock { failures in
                        failures = (failures.count + 1, "\(error)")
                        return failures.count
                    }
                    self.store.logger.warning("cannot forget expired idempotency keys", metadata: ["error": "\(error)", "failures": "\(count)"])
                }
                try? await Task.sleep(for: self.interval)
            }
        }
    }

    /// Deletes every key older than the window, a batch per transaction; answers how many.
    @discardableResult
    public func sweep() async throws -> Int {
        let seconds = Double(window.components.seconds) + Double(window.components.attoseconds) / 1e18
        var total = 0
        while true {
            let deleted = try await store.withConnection { connection in
                let rows = try await connection.query("""
                    WITH expired AS (
                        SELECT key FROM idempotency_keys WHERE created_at < now() - make_interval(secs => \(seconds))
                        ORDER BY created_at LIMIT \(self.batch) FOR UPDATE SKIP LOCKED),
                    gone AS (DELETE FROM idempotency_keys USING expired WHERE idempotency_keys.key = expired.key RETURNING 1)
                    SELECT count(*) FROM gone
                    """, logger: self.store.logger)
                for try await count in rows.decode(Int.self) { return count }
                return 0
            }
            total += deleted
            if deleted < batch { return total }
        }
    }

    /// For `/health/ready`: a problem once three sweeps in a row have failed.
    public func check() -> Problem? {
        let (count, last) = failures.withLock { $0 }
        guard count >= 3 else { return nil }
        return Problem(.serviceUnavailable, rule: "retention-failing", title: "Not ready: expired idempotency keys are not forgotten",
                       detail: "\(count) sweeps in a row failed; the last: \(last ?? "unknown")", headers: [.retryAfter: "60"])
    }
}
