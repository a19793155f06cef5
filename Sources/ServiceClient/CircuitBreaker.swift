import Synchronization

/// A circuit breaker for one downstream service. Closed: calls go through, and `failureThreshold` failures in a
/// row open it. Open: calls fail fast for `openFor`. Then half-open: one call (the probe) goes through while
/// the others still fail fast; its success closes the breaker, its failure opens it again.
public final class CircuitBreaker: Sendable {
    public enum State: String, Sendable, Equatable { case closed, open, halfOpen = "half-open" }

    public enum Permission: Equatable, Sendable {
        case allowed
        /// The probe of a half-open breaker: report its outcome.
        case probe
        /// Fail fast: retry after this long.
        case rejected(retryAfter: Duration)
    }

    public let failureThreshold: Int
    public let openFor: Duration
    private struct Status {
        var state = State.closed
        var failures = 0
        var openedAt: ContinuousClock.Instant?
        var probing = false
    }
    private let status = Mutex(Status())

    public init(failureThreshold: Int = 5, openFor: Duration = .seconds(5)) {
        precondition(failureThreshold >= 1)
        self.failureThreshold = failureThreshold
        self.openFor = openFor
    }

    public var state: State { status.withLock { $0.state } }

    public func permission(now: ContinuousClock.Instant = .now) -> Permission {
        status.withLock { status in
            switch status.state {
            case .closed:
                return .allowed
            case .open:
                let openedAt = status.openedAt ?? now
                guard now - openedAt >= openFor else { return .rejected(retryAfter: openFor - (now - openedAt)) }
                status.state = .halfOpen
                status.probing = true
                return .probe
            case .halfOpen:
                if status.probing { return .rejected(retryAfter: .seconds(1)) }
                status.probing = true
                return .probe
            }
        }
    }

    /// Reports how a call that was let through ended.
    public func record(success: Bool, now: ContinuousClock.Instant = .now) {
        status.withLock { status in
            if success {
                status = Status()
                return
            }
            status.failures += 1
            if status.state == .halfOpen || status.failures >= failureThreshold {
                status.state = .open
                status.openedAt = now
                status.probing = false
            }
        }
    }
}

/// A cap on the calls in flight to one downstream service, so that a slow service cannot take all of the
/// gateway's capacity from the others. A call that finds it full is refused at once.
public final class Bulkhead: Sendable {
    public let capacity: Int
    private let inFlight = Mutex(0)
    /// Calls inside now.
    public var occupancy: Int { inFlight.withLock { $0 } }

    public init(capacity: Int) {
        precondition(capacity >= 1)
        self.capacity = capacity
    }

    /// Takes a place, or says the bulkhead is full; give the place back with ``leave()``.
    public func enter() -> Bool {
        inFlight.withLock { count in
            guard count < capacity else { return false }
            count += 1
            return true
        }
    }

    public func leave() { inFlight.withLock { $0 = max(0, $0 - 1) } }

    public var occupied: Int { inFlight.withLock { $0 } }
}
