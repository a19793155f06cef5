import AsyncHTTPClient
import Foundation
import Identity
import Logging
import NIOCore
import NIOHTTP1
import ServiceLifecycle
import Synchronization

/// One downstream service as the gateway sees it: its instances (from configuration: URLs, or DNS names that
/// resolve to several), which of them are healthy, and the resilience around every call to it: a bulkhead,
/// a circuit breaker, a timeout, and a retry on another instance for calls that are safe to repeat.
///
/// A `Service`: run it to check the instances' health (`GET <instance><healthPath>`) every `healthInterval`;
/// an instance that fails a check or a call is taken out, and put back when a check passes.
public final class Downstream: Service, Sendable {
    public struct Configuration: Sendable {
        public var name: String
        /// The service's name in the service tokens sent to it (``name`` unless set).
        public var audience: String
        /// Base URLs of its instances, such as `http://127.0.0.1:8081`.
        public var instances: [String]
        public var timeout: Duration
        public var failureThreshold: Int
        public var openFor: Duration
        public var concurrency: Int
        public var healthPath: String
        public var healthInterval: Duration
        /// How long connecting to an instance may take: short, so that a dead instance costs little before
        /// the call goes to another.
        public var connectTimeout: Duration

        public init(name: String, instances: [String], timeout: Duration = .seconds(5), failureThreshold: Int = 5,
                    openFor: Duration = .seconds(5), concurrency: Int = 64, healthPath: String = "/health/ready",
                    healthInterval: Duration = .seconds(2), connectTimeout: Duration = .milliseconds(500), audience: String? = nil) {
            self.name = name
            self.audience = audience ?? name
            self.instances = instances.map { $0.hasSuffix("/") ? String($0.dropLast()) : $0 }
            self.timeout = timeout
            self.failureThreshold = failureThreshold
            self.openFor = openFor
            self.concurrency = concurrency
            self.healthPath = healthPath
            self.healthInterval = healthInterval
            self.connectTimeout = connectTimeout
        }
    }

    public struct Request: Sendable {
        public var method: HTTPMethod
        /// The path and query, such as `/products?limit=20`.
        public var path: String
        public var headers: HTTPHeaders
        public var body: ByteBuffer?

        public init(method: HTTPMethod = .GET, path: String, headers: HTTPHeaders = [:], body: ByteBuffer? = nil) {
            self.method = method
            self.path = path
            self.headers = headers
            self.body = body
        }

        /// Safe to send again: a read, or a command with an idempotency key (the service answers a repeat
        /// from its stored reply).
        public var isRepeatable: Bool {
            [.GET, .HEAD, .OPTIONS].contains(method) || headers.contains(name: "Idempotency-Key")
        }
    }

    public struct Response: Sendable {
        public let status: HTTPResponseStatus
        public let headers: HTTPHeaders
        public let body: ByteBuffer
        /// The instance that answered.
        public let instance: String
    }

    public enum Failure: Error, Equatable, CustomStringConvertible {
        /// The bulkhead is full: too many calls in flight.
        case busy(service: String)
        /// The breaker is open: failing fast.
        case open(service: String, retryAfter: Duration)
        /// No instance answered in time, or at all.
        case unavailable(service: String, reason: String)

        public var description: String {
            switch self {
            case .busy(let service): "\(service) is busy: too many calls in flight"
            case .open(let service, _): "\(service) is failing: calls to it are paused"
            case .unavailable(let service, let reason): "\(service) is unavailable: \(reason)"
            }
        }

        /// When to try again (for `Retry-After`).
        public var retryAfter: Duration {
            switch self {
            case .busy: .seconds(1)
            case .open(_, let after): max(after, .seconds(1))
            case .unavailable: .seconds(1)
            }
        }
    }

    public let configuration: Configuration
    public let breaker: CircuitBreaker
    public let bulkhead: Bulkhead
    private let healthy: Mutex<[Bool]>
    private let turn = Atomic<Int>(0)
    private let client: HTTPClient
    /// Signs the service token every call carries.
    private let identity: ServiceIdentity?
    private let logger: Logger

    /// Its own HTTP client (with ``Configuration/connectTimeout``), shut down when ``run()`` ends.
    public init(_ configuration: Configuration, identity: ServiceIdentity?, logger: Logger) {
        precondition(!configuration.instances.isEmpty, "a downstream needs at least one instance")
        self.configuration = configuration
        self.breaker = CircuitBreaker(failureThreshold: configuration.failureThreshold, openFor: configuration.openFor)
        self.bulkhead = Bulkhead(capacity: configuration.concurrency)
        self.healthy = Mutex(Array(repeating: true, count: configuration.instances.count))
        var http = HTTPClient.Configuration()
        http.timeout.connect = .nanoseconds(Int64(configuration.connectTimeout.seconds * 1e9))
        // As many connections to an instance as the bulkhead lets calls through: with AsyncHTTPClient's default of 8, eight
        // slow calls (long polls) held every connection, and every other call queued behind them.
        http.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = configuration.concurrency
        // Shorter than the services' own idle and read timeouts (30 s): a kept connection is dropped here before the
        // service could close it under a request being sent.
        http.connectionPool.idleTimeout = .seconds(20)
        self.client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: http)
        self.identity = identity
        self.logger = logger
    }

    init(_ configuration: Configuration, client: HTTPClient, identity: ServiceIdentity? = nil, logger: Logger) {
        precondition(!configuration.instances.isEmpty, "a downstream needs at least one instance")
        self.configuration = configuration
        self.breaker = CircuitBreaker(failureThreshold: configuration.failureThreshold, openFor: configuration.openFor)
        self.bulkhead = Bulkhead(capacity: configuration.concurrency)
        self.healthy = Mutex(Array(repeating: true, count: configuration.instances.count))
        self.client = client
        self.identity = identity
        self.logger = logger
    }

    /// The instances that pass their health checks now.
    public var healthyInstances: [String] {
        let flags = healthy.withLock { $0 }
        return zip(configuration.instances, flags).filter(\.1).map(\.0)
    }

    /// Sends `request` to a healthy instance (round robin), within the bulkhead, the breaker and the timeout;
    /// a repeatable request that fails on one instance is tried once on another. An answer below 500 is a
    /// success for the breaker (a 404 is the service working).
    public func send(_ request: Request) async throws(Failure) -> Response {
        guard bulkhead.enter() else { throw .busy(service: configuration.name) }
        defer { bulkhead.leave() }
        let permission = breaker.permission()
        if case .rejected(let after) = permission { throw .open(service: configuration.name, retryAfter: after) }

        let order = instancesInTurn()
        let tries = request.isRepeatable && permission == .allowed ? min(2, order.count) : 1
        var lastReason = "no instance"
        for index in order.prefix(tries) {
            do {
                let response = try await call(request, on: index)
                if response.status.code < 500 {
                    breaker.record(success: true)
                    return response
                }
                lastReason = "\(configuration.instances[index]) answered \(response.status.code)"
                if !request.isRepeatable {
                    breaker.record(success: false)
                    return response
                }
            } catch {
                lastReason = "\(configuration.instances[index]): \(Self.describe(error))"
            }
            setHealthy(index, false)
        }
        breaker.record(success: false)
        throw .unavailable(service: configuration.name, reason: lastReason)
    }

    private func call(_ request: Request, on index: Int) async throws -> Response {
        var outgoing = HTTPClientRequest(url: configuration.instances[index] + request.path)
        outgoing.method = request.method
        outgoing.headers = request.headers
        if let identity { outgoing.headers.replaceOrAdd(name: "Authorization", value: try await identity.authorization(to: configuration.audience)) }
        if let body = request.body { outgoing.body = .bytes(body) }
        let response = try await client.execute(outgoing, timeout: .nanoseconds(Int64(configuration.timeout.seconds * 1e9)))
        let body = try await response.body.collect(upTo: 8 * 1024 * 1024)
        return Response(status: response.status, headers: response.headers, body: body, instance: configuration.instances[index])
    }

    /// Healthy instances from the next one in turn, then the others: an instance marked down may be back before
    /// its next check (a health check that took too long on a busy machine marks a live one down), and trying it is
    /// better than no answer when the healthy ones failed a request that may be repeated.
    private func instancesInTurn() -> [Int] {
        let count = configuration.instances.count
        let start = turn.add(1, ordering: .relaxed).oldValue
        let rotated = (0..<count).map { (start + $0) % count }
        let flags = healthy.withLock { $0 }
        return rotated.filter { flags[$0] } + rotated.filter { !flags[$0] }
    }

    private func setHealthy(_ index: Int, _ value: Bool) {
        let changed = healthy.withLock { flags -> Bool in
            defer { flags[index] = value }
            return flags[index] != value
        }
        if changed {
            logger.warning("instance \(value ? "back in" : "taken out of") rotation",
                           metadata: ["downstream": "\(configuration.name)", "downstream_instance": "\(configuration.instances[index])"])
        }
    }

    /// Checks every instance's health now.
    public func checkHealth() async {
        await withTaskGroup(of: Void.self) { group in
            for index in configuration.instances.indices {
                group.addTask {
                    let request = HTTPClientRequest(url: self.configuration.instances[index] + self.configuration.healthPath)
                    let response = try? await self.client.execute(request, timeout: .seconds(1))
                    if let response { _ = try? await response.body.collect(upTo: 64 * 1024) }
                    self.setHealthy(index, response?.status == .ok)
                }
            }
        }
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await self.checkHealth()
                try? await Task.sleep(for: self.configuration.healthInterval)
            }
        }
        try await shutdown()
    }

    /// Closes its HTTP client (``run()`` does when it ends; call it when the downstream was never run).
    public func shutdown() async throws {
        try await client.shutdown()
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded, .readTimeout, .connectTimeout: return "no answer in time"
            default: return "\(error)"
            }
        }
        return "\(error)"
    }
}
