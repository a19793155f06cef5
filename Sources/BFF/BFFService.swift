import CLIBFF
import Foundation
import Gateway
import Hummingbird
import Identity
import WebBFF
import Storefront
import Logging
import ServiceClient
import ServiceKit

/// The single entry point for clients: the BFFs on one port, in front of the three context services, sharing
/// one gateway core (tokens, rate limits, instances, breakers, bulkheads).
public enum BFFService {
    public struct Configuration: Sendable, ConnectionTimeoutConfigurable {
        public var host: String
        public var port: Int
        /// The HMAC secret of bearer tokens (at least 32 bytes).
        public var tokenSecret: Data
        /// The secret the shop's processes sign their service tokens with ($SHOP_SERVICE_SECRET, at least 32 bytes).
        public var serviceSecret: Data
        /// Each service's instances (base URLs).
        public var catalog: [String], ordering: [String], billing: [String]
        public var requestsPerSecond: Double
        public var burst: Int
        /// Per-call timeout to the services.
        public var timeout: Duration
        /// How long a CLI checkout waits for the order's outcome (seconds).
        public var checkoutWait: Int
        public var healthInterval: Duration
        /// Whether `POST /cli/v1/login` and `/web/v1/login` sign anybody in without a password (local use only).
        public var developmentLogin: Bool
        /// How long the BFFs keep a public catalog page (zero: not at all).
        public var catalogPageLifetime: Duration
        /// Its metrics, served at GET /metrics.
        public var metrics = ServiceMetrics()
        /// How long a connection may stay idle, or take to send a request, before it is closed.
        public var connectionTimeout: Duration = ShopHTTPServer.idleTimeout

        public init(host: String = "127.0.0.1", port: Int = 8080, tokenSecret: Data, serviceSecret: Data, catalog: [String], ordering: [String], billing: [String],
                    requestsPerSecond: Double = 20, burst: Int = 40, timeout: Duration = .seconds(15), checkoutWait: Int = 10,
                    healthInterval: Duration = .seconds(2), developmentLogin: Bool = false,
                    catalogPageLifetime: Duration = .seconds(1)) {
            self.host = host
            self.port = port
            self.tokenSecret = tokenSecret
            self.serviceSecret = serviceSecret
            self.catalog = catalog
            self.ordering = ordering
            self.billing = billing
            self.requestsPerSecond = requestsPerSecond
            self.burst = burst
            self.timeout = timeout
            self.checkoutWait = checkoutWait
            self.healthInterval = healthInterval
            self.developmentLogin = developmentLogin
            self.catalogPageLifetime = catalogPageLifetime
        }
    }

    public static func application(_ configuration: Configuration, logger: Logger) async throws -> some ApplicationProtocol {
        let signer = try await TokenSigner(secret: configuration.tokenSecret)
        let identity = try await ServiceIdentity(name: "bff", secret: configuration.serviceSecret)
        func downstream(_ name: String, _ instances: [String]) -> Downstream {
            Downstream(.init(name: name, instances: instances, timeout: configuration.timeout, healthInterval: configuration.healthInterval),
                       identity: identity, logger: logger)
        }
        // The order watch's long poll of Ordering's feed: one request at a time, up to 20 s, against its own breaker only.
        let feed = Downstream(.init(name: "ordering-feed", instances: configuration.ordering, timeout: configuration.timeout + .seconds(30),
                                    concurrency: 4, healthInterval: configuration.healthInterval, audience: "ordering"),
                              identity: identity, logger: logger)
        let services = Downstreams(catalog: downstream("catalog", configuration.catalog), ordering: downstream("ordering", configuration.ordering),
                                   billing: downstream("billing", configuration.billing), orderingFeed: feed, logger: logger)
        let router = Router(context: GatewayContext.self)
        let metrics = configuration.metrics
        metrics.installMiddleware(on: router)
        router.middlewares.add(Authenticate(signer: signer))
        router.middlewares.add(RateLimit(RateLimiter(perSecond: configuration.requestsPerSecond, burst: configuration.burst), metrics: metrics))
        router.middlewares.add(RejectRefusedToken())
        // The edge's metrics are the operators': an admin token reads them (Prometheus scrapes with one).
        metrics.serve(on: router, authorize: { context in _ = try context.admin() })
        metrics.onScrape { metrics in
            for service in services.all {
                let name = [("service", service.configuration.name)]
                let state = service.breaker.state
                for candidate in ["closed", "open", "half-open"] {
                    metrics.gauge("circuit_breaker_state", name + [("state", candidate)]).record(state.rawValue == candidate ? 1 : 0)
                }
                metrics.gauge("bulkhead_in_flight", name).record(service.bulkhead.occupancy)
                metrics.gauge("bulkhead_capacity", name).record(service.bulkhead.capacity)
                metrics.gauge("downstream_healthy_instances", name).record(service.healthyInstances.count)
            }
            metrics.gauge("order_waits_in_progress").record(services.orders.waiters)
            metrics.gauge("order_watch_following").record(services.orders.isFollowing ? 1 : 0)
        }
        router.get("/health/live") { _, _ in ["status": "live"] }
        router.get("/health/ready") { _, _ -> Response in
            let down = services.all.filter { $0.healthyInstances.isEmpty }.map(\.configuration.name)
            guard down.isEmpty else {
                throw Problem(.serviceUnavailable, rule: "not-ready", title: "Not ready",
                              detail: "no healthy instance of \(down.joined(separator: ", "))", headers: [.retryAfter: "1"])
            }
            guard services.orders.isFollowing else {
                throw Problem(.serviceUnavailable, rule: "not-ready", title: "Not ready",
                              detail: "not following Ordering's feed: waits for orders look again every second", headers: [.retryAfter: "1"])
            }
            return try CommandReply.json(.ok, ["status": "ready"]).response(replayed: false)
        }
        let login = DevelopmentLogin(signer: signer, enabled: configuration.developmentLogin)
        let pages = PageCache(lifetime: configuration.catalogPageLifetime)
        try CLIBFF(services: services, login: login, pages: pages, checkoutWait: configuration.checkoutWait).addRoutes(to: router)
        let web = WebBFF(services: services, login: login, pages: pages)
        try web.addRoutes(to: router)
        // The web shop in a browser, at `/`.
        try Storefront(services: services, web: web, login: login, signer: signer).addRoutes(to: router)
        return Application(
            router: router,
            server: ShopHTTPServer.http1(idleTimeout: configuration.connectionTimeout, readTimeout: configuration.connectionTimeout),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "shop-bff"),
            services: services.all + [services.orders],
            logger: logger)
    }
}
