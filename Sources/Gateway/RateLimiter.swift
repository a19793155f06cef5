import Foundation
import Hummingbird
import ServiceKit
import Synchronization

/// A token bucket per client: each holds up to `burst` tokens and gains `perSecond` a second; a request takes
/// one, or is refused with how long until one is there. Idle clients' buckets are forgotten (a full bucket
/// is what a new client gets anyway), so memory follows the clients active recently.
public final class RateLimiter: Sendable {
    public enum Decision: Equatable, Sendable {
        case allowed
        /// Refused: retry after this long.
        case limited(retryAfter: Duration)
    }

    public let perSecond: Double
    public let burst: Double
    private struct Bucket { var tokens: Double; var updated: ContinuousClock.Instant }
    private let buckets = Mutex<[String: Bucket]>([:])
    private let lastSweep = Mutex<ContinuousClock.Instant?>(nil)

    /// The longest wait it computes, in seconds (a day): a rate configured absurdly slow must not make a `Duration` no
    /// integer holds.
    static let longest: Double = 86_400

    public init(perSecond: Double, burst: Int) {
        precondition(perSecond > 0 && burst >= 1)
        self.perSecond = perSecond
        self.burst = Double(burst)
    }

    public func take(_ client: String, now: ContinuousClock.Instant = .now) -> Decision {
        sweep(now)
        return buckets.withLock { buckets in
            var bucket = buckets[client] ?? Bucket(tokens: burst, updated: now)
            bucket.tokens = min(burst, bucket.tokens + max(0, (now - bucket.updated).seconds) * perSecond)
            bucket.updated = now
            defer { buckets[client] = bucket }
            if bucket.tokens >= 1 {
                bucket.tokens -= 1
                return .allowed
            }
            return .limited(retryAfter: .seconds(min((1 - bucket.tokens) / perSecond, Self.longest)))
        }
    }

    /// Forgets buckets that have been full again for a while, at most once a minute.
    private func sweep(_ now: ContinuousClock.Instant) {
        let due = lastSweep.withLock { last -> Bool in
            guard let seen = last else { last = now; return false }
            guard now - seen > .seconds(60) else { return false }
            last = now
            return true
        }
        guard due else { return }
        let refill = Duration.seconds(min(burst / perSecond, Self.longest))
        buckets.withLock { buckets in buckets = buckets.filter { now - $0.value.updated < refill } }
    }

    /// How many clients it tracks (for tests and metrics).
    public var trackedClients: Int { buckets.withLock { $0.count } }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

/// Refuses requests over the client's rate (429 with `Retry-After`); a client is a token's subject, or the
/// peer's address without a token. Health checks are not counted.
public struct RateLimit: RouterMiddleware {
    public typealias Context = GatewayContext
    let limiter: RateLimiter
    let metrics: ServiceMetrics?

    public init(_ limiter: RateLimiter, metrics: ServiceMetrics? = nil) {
        self.limiter = limiter
        self.metrics = metrics
    }

    public func handle(_ request: Request, context: GatewayContext, next: (Request, GatewayContext) async throws -> Response) async throws -> Response {
        if request.uri.path.hasPrefix("/health/") { return try await next(request, context) }
        if case .limited(let after) = limiter.take(context.client) {
            let seconds = after.retryAfterSeconds
            metrics?.counter("ratelimit_rejections_total", [("client_kind", context.claims.map { $0.role.rawValue } ?? "anonymous")]).increment()
            throw Problem(.tooManyRequests, rule: "rate-limited", title: "Too many requests",
                          detail: "this client sends more requests than it may; retry in \(seconds) s", headers: [.retryAfter: "\(seconds)"])
        }
        return try await next(request, context)
    }
}

extension Duration {
    /// A `Retry-After` of this long: whole seconds, 1 to 86,400 (a limiter configured with an absurdly slow rate must
    /// not make a number no integer holds).
    var retryAfterSeconds: Int {
        let seconds = seconds.rounded(.up)
        return seconds.isFinite ? Int(min(max(seconds, 1), 86_400)) : 86_400
    }
}
