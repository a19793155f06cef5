import AsyncHTTPClient
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import Identity
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import Synchronization

/// One downstream service as the gateway sees it: its instances, which of them are healthy, and the resilience
/// around every call to it: a bulkhead, a circuit breaker, a timeout, and a retry on another instance for calls
/// that are safe to repeat.
///
/// Instances are discovered: each configured URL whose host is a name (`http://catalog:8081`) stands for every
/// IPv4 address DNS answers for that name, looked up again before every round of health checks, so instances that
/// come and go (pods, hosts) are found without a restart. A URL with an address is one instance.
///
/// A `Service`: run it to check the instances' health (`GET <instance><healthPath>`) every `healthInterval`;
/// an instance that fails a check or a call is taken out, and put back when a check passes.
public final class Downstream: Service, Sendable {
    public struct Configuration: Sendable {
        public var name: String
        /// The service's name in the service tokens sent to it (``name`` unless set).
        public var audience: String
        /// Base URLs of its instances, such as `http://127.0.0.1:8081`, or of names that DNS answers with the
        /// addresses of its instances, such as `http://catalog:8081`.
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
    /// The instances as last discovered, each with whether it passes its health checks.
    private let known: Mutex<[(url: String, healthy: Bool)]>
    /// What each configured URL last resolved to (kept while a lookup fails: a DNS blip removes no instance).
    private let resolved: Mutex<[String: [String]]>
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
        self.known = Mutex(configuration.instances.map { ($0, true) })
        self.resolved = Mutex([:])
        var http = HTTPClient.Configuration()
        http.timeout.connect = configuration.connectTimeout.timeAmount
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

    /// A downstream made but never run (or run and stopped without its client closed) closes its client as it goes:
    /// the close completes on its own (a closing client keeps itself alive until it is closed).
    deinit {
        client.shutdown().whenComplete { _ in }
    }

    /// The instances that pass their health checks now.
    public var healthyInstances: [String] {
        known.withLock { $0.filter(\.healthy).map(\.url) }
    }

    /// Every instance discovered, healthy or not.
    public var instances: [String] {
        known.withLock { $0.map(\.url) }
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
        for instance in order.prefix(tries) {
            do {
                let response = try await call(request, on: instance)
                if response.status.code < 500 {
                    breaker.record(success: true)
                    return response
                }
                lastReason = "\(instance) answered \(response.status.code)"
                if !request.isRepeatable {
                    breaker.record(success: false)
                    return response
                }
            } catch {
                lastReason = "\(instance): \(Self.describe(error))"
            }
            setHealthy(instance, false)
        }
        breaker.record(success: false)
        throw .unavailable(service: configuration.name, reason: lastReason)
    }

    private func call(_ request: Request, on instance: String) async throws -> Response {
        var outgoing = HTTPClientRequest(url: instance + request.path)
        outgoing.method = request.method
        outgoing.headers = request.headers
        if let identity { outgoing.headers.replaceOrAdd(name: "Authorization", value: try await identity.authorization(to: configuration.audience)) }
        if let body = request.body { outgoing.body = .bytes(body) }
        let response = try await client.execute(outgoing, timeout: configuration.timeout.timeAmount)
        let body = try await response.body.collect(upTo: 8 * 1024 * 1024)
        return Response(status: response.status, headers: response.headers, body: body, instance: instance)
    }

    /// Healthy instances from the next one in turn, then the others: an instance marked down may be back before
    /// its next check (a health check that took too long on a busy machine marks a live one down), and trying it is
    /// better than no answer when the healthy ones failed a request that may be repeated.
    private func instancesInTurn() -> [String] {
        let current = known.withLock { $0 }
        guard !current.isEmpty else { return [] }
        let start = turn.add(1, ordering: .relaxed).oldValue
        let rotated = (0..<current.count).map { current[(start + $0) % current.count] }
        return rotated.filter(\.healthy).map(\.url) + rotated.filter { !$0.healthy }.map(\.url)
    }

    private func setHealthy(_ instance: String, _ value: Bool) {
        let changed = known.withLock { known -> Bool in
            guard let index = known.firstIndex(where: { $0.url == instance }), known[index].healthy != value else { return false }
            known[index].healthy = value
            return true
        }
        if changed {
            logger.warning("instance \(value ? "back in" : "taken out of") rotation",
                           metadata: ["downstream": "\(configuration.name)", "downstream_instance": "\(instance)"])
        }
    }

    /// Looks the configured names up again: an address that appeared joins (unhealthy until its first check passes),
    /// one that is gone leaves. A name that does not resolve keeps what it resolved to last, or, never resolved,
    /// stands for itself (the HTTP client resolves it at each connection).
    public func discover() async {
        var urls: [String] = []
        for seed in configuration.instances {
            guard let components = URLComponents(string: seed), let host = components.host, !Self.isAddress(host) else {
                urls.append(seed)
                continue
            }
            if let addresses = try? await Self.addresses(of: host), !addresses.isEmpty {
                let expanded = addresses.map { address -> String in
                    var instance = components
                    instance.host = address
                    return instance.string ?? seed
                }
                resolved.withLock { $0[seed] = expanded }
                urls += expanded
            } else {
                urls += resolved.withLock { $0[seed] } ?? [seed]
            }
        }
        var seen = Set<String>()
        urls = urls.filter { seen.insert($0).inserted }
        let (added, removed) = known.withLock { known -> ([String], [String]) in
            let before = Dictionary(known.map { ($0.url, $0.healthy) }, uniquingKeysWith: { first, _ in first })
            known = urls.map { ($0, before[$0] ?? false) }
            return (urls.filter { before[$0] == nil }, before.keys.filter { !seen.contains($0) })
        }
        for instance in added where !configuration.instances.contains(instance) {
            logger.info("instance discovered", metadata: ["downstream": "\(configuration.name)", "downstream_instance": "\(instance)"])
        }
        for instance in removed.sorted() where !configuration.instances.contains(instance) {
            logger.info("instance gone from DNS", metadata: ["downstream": "\(configuration.name)", "downstream_instance": "\(instance)"])
        }
    }

    static func isAddress(_ host: String) -> Bool {
        var v4 = in_addr(), v6 = in6_addr()
        let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        return inet_pton(AF_INET, bare, &v4) == 1 || inet_pton(AF_INET6, bare, &v6) == 1
    }

    /// The IPv4 addresses DNS (or /etc/hosts) answers for `host`, in the order answered; looked up on NIO's thread
    /// pool, since getaddrinfo blocks.
    static func addresses(of host: String) async throws -> [String] {
        try await NIOThreadPool.singleton.runIfActive {
            var hints = addrinfo()
            hints.ai_family = AF_INET
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            var list: UnsafeMutablePointer<addrinfo>?
            guard getaddrinfo(host, nil, &hints, &list) == 0 else { return [] }
            defer { freeaddrinfo(list) }
            var addresses: [String] = []
            var next = list
            while let entry = next {
                if let address = entry.pointee.ai_addr, entry.pointee.ai_family == AF_INET {
                    var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
                    var ipv4 = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
                    if inet_ntop(AF_INET, &ipv4, &text, socklen_t(INET_ADDRSTRLEN)) != nil {
                        let string = String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                        if !addresses.contains(string) { addresses.append(string) }
                    }
                }
                next = entry.pointee.ai_next
            }
            return addresses
        }
    }

    /// Checks every instance's health now.
    public func checkHealth() async {
        await withTaskGroup(of: Void.self) { group in
            for instance in instances {
                group.addTask {
                    let request = HTTPClientRequest(url: instance + self.configuration.healthPath)
                    let response = try? await self.client.execute(request, timeout: .seconds(1))
                    if let response { _ = try? await response.body.collect(upTo: 64 * 1024) }
                    self.setHealthy(instance, response?.status == .ok)
                }
            }
        }
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                await self.discover()
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

extension Duration {
    /// The same length as NIO's `TimeAmount`.
    var timeAmount: TimeAmount {
        .nanoseconds(components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000)
    }
}
