import PostgresNIO
import Synchronization

/// The database did not answer in time, or could not be reached: what was asked may or may not have been done.
/// A caller retries (a command with the same idempotency key, which tells whether it was done).
public struct DatabaseUnavailable: Error, Hashable, CustomStringConvertible {
    public let reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { "the database is unavailable: \(reason)" }
}

extension PSQLError {
    /// Whether the error says the database could not be reached or went away (the connection failed or closed, the
    /// server shut down or is starting, too many connections), rather than that the statement was wrong: the outcome
    /// of a statement that was being run is then unknown, and a retry may succeed.
    public var isUnavailability: Bool {
        switch code {
        case .connectionError, .serverClosedConnection, .clientClosedConnection, .uncleanShutdown, .poolClosed, .queryCancelled:
            return true
        case .server:
            // 08: connection exception; 57: operator intervention (shutdown, crash, cannot connect now); 53: out of
            // resources (too many connections).
            guard let state = sqlState else { return false }
            return state.hasPrefix("08") || state.hasPrefix("57") || state.hasPrefix("53")
        default:
            return false
        }
    }
}

/// Runs `body`, and gives up waiting for it after `limit`, throwing ``DatabaseUnavailable``; the body is left to
/// finish on its own.
///
/// Why every database call needs one: PostgresNIO sends a query with a write that nobody is told of if it fails, and a
/// query sent on a connection the server has just closed (PostgreSQL crashed or restarted, and the pool has not
/// noticed yet) is never answered. Nothing else ends that wait: the saga orchestrator and the projectors hung after
/// a crash until the process was restarted. A connection that closed is dropped by the pool, lease or not, so what
/// is left behind holds no connection for ever.
public func withDeadline<Result: Sendable>(
    _ limit: Duration, _ what: @autoclosure () -> String, _ body: @escaping @Sendable () async throws -> Result
) async throws -> Result {
    let description = what()
    return try await waitAtMost(limit, orThrow: { DatabaseUnavailable("\(description) did not answer within \(limit)") }, body)
}

/// Runs `body`, and stops waiting for it after `limit` (throwing what `timeout` makes) or when the caller is cancelled;
/// either way `giveUp` runs (to close what `body` may be stuck on), and the body is cancelled and left to finish on
/// its own.
public func waitAtMost<Result: Sendable>(
    _ limit: Duration, orThrow timeout: @escaping @Sendable () -> any Error, giveUp: @escaping @Sendable () -> Void = {},
    _ body: @escaping @Sendable () async throws -> Result
) async throws -> Result {
    let outcome = Outcome<Result>()
    let work = Task { do { outcome.finish(.success(try await body())) } catch { outcome.finish(.failure(error)) } }
    let watchdog = Task {
        try? await Task.sleep(for: limit)
        if Task.isCancelled { return }
        outcome.finish(.failure(timeout()))
        giveUp()
    }
    defer { watchdog.cancel() }
    return try await withTaskCancellationHandler {
        try await outcome.value()
    } onCancel: {
        work.cancel()
        outcome.finish(.failure(CancellationError()))
        giveUp()
    }
}

/// The first result given to `finish`, for whoever waits on `value()` (before or after it is given).
public final class Outcome<Value: Sendable>: Sendable {
    private enum State: Sendable { case empty, waiting(CheckedContinuation<Value, any Error>), done(Result<Value, any Error>) }
    private let state = Mutex(State.empty)

    public init() {}

    public func finish(_ result: Result<Value, any Error>) {
        let waiting = state.withLock { state -> CheckedContinuation<Value, any Error>? in
            switch state {
            case .empty: state = .done(result); return nil
            case .waiting(let continuation): state = .done(result); return continuation
            case .done: return nil
            }
        }
        waiting?.resume(with: result)
    }

    public func value() async throws -> Value {
        try await withCheckedThrowingContinuation { continuation in
            let done = state.withLock { state -> Result<Value, any Error>? in
                switch state {
                case .empty: state = .waiting(continuation); return nil
                case .done(let result): return result
                case .waiting: return .failure(CancellationError())  // one waiter only
                }
            }
            if let done { continuation.resume(with: done) }
        }
    }
}
