import Billing
import EventStore
import Foundation
import AsyncHTTPClient
import Hummingbird
import Identity
import Logging
import PaymentLedger
import Projections
import ServiceKit
import ServiceLifecycle
import ServiceRuntime

/// The Billing service: payments, through a payment provider over HTTP (`shop-server payment-provider` locally).
public enum BillingService {
    public struct Configuration: Sendable, ConnectionTimeoutConfigurable {
        public var host: String
        public var port: Int
        public var database: DatabaseURL
        /// Where the payment provider answers.
        public var providerURL: String
        /// How long a call to the provider may take before the request gives up (and records nothing).
        public var providerDeadline: Duration
        /// Where its SQLite views live.
        public var viewsDirectory: URL
        /// Its metrics, served at GET /metrics.
        public var metrics = ServiceMetrics()
        /// How long a connection may stay idle, or take to send a request, before it is closed.
        public var connectionTimeout: Duration = ShopHTTPServer.idleTimeout
        /// The secret the shop's processes sign their service tokens with ($SHOP_SERVICE_SECRET, at least 32 bytes).
        public var serviceSecret: Data

        public init(host: String = "127.0.0.1", port: Int = 8083, database: DatabaseURL, providerURL: String = "http://127.0.0.1:8084",
                    providerDeadline: Duration = .seconds(5), viewsDirectory: URL, serviceSecret: Data) {
            self.host = host
            self.port = port
            self.database = database
            self.providerURL = providerURL
            self.providerDeadline = providerDeadline
            self.viewsDirectory = viewsDirectory
            self.serviceSecret = serviceSecret
        }
    }

    /// - Parameter provider: the provider to call instead of the one at `providerURL` (for tests).
    public static func application(_ configuration: Configuration, provider: (any PaymentProvider)? = nil,
                                   logger: Logger) async throws -> some ApplicationProtocol {
        let identity = try await ServiceIdentity(name: "billing", secret: configuration.serviceSecret)
        // Its own connections to the provider, as many as calls may be in flight (AsyncHTTPClient's shared client
        // keeps 8 a host, and a ninth payment waited for one); kept idle 20 s at most.
        var http = HTTPClient.Configuration()
        http.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 64
        http.connectionPool.idleTimeout = .seconds(20)
        let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: http)
        let provider = provider ?? HTTPPaymentProvider(baseURL: configuration.providerURL, client: client)
        let store = EventStore(.init(database: configuration.database), logger: logger)
        let ledger = try Projector(PaymentLedger(), store: store, directory: configuration.viewsDirectory, logger: logger)
        let router = Router()
        let metrics = configuration.metrics
        metrics.install(on: router)
        let retention = IdempotencyKeyRetention(store: store)
        Health(store: store, projectors: [ledger], checks: [{ retention.check() }]).addRoutes(to: router)
        router.add(middleware: AuthenticateCaller(identity, audience: "billing"))
        BillingAPI(store: store, provider: provider, providerDeadline: configuration.providerDeadline).addRoutes(to: router)
        PaymentFeed.feed(store).addRoutes(to: router)
        PaymentQueries(ledger: ledger).addRoutes(to: router)
        let views = ViewsStatus([ledger])
        views.addRoutes(to: router)
        views.export(to: metrics)
        return Application(
            router: router,
            server: ShopHTTPServer.http1(idleTimeout: configuration.connectionTimeout, readTimeout: configuration.connectionTimeout),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "shop-billing"),
            services: [store, ledger, retention, ClientLifetime(client: client)],
            logger: logger)
    }
}

/// Shuts an HTTP client down when the service stops.
struct ClientLifetime: Service {
    let client: HTTPClient

    func run() async throws {
        try? await gracefulShutdown()
        try await client.shutdown()
    }
}
