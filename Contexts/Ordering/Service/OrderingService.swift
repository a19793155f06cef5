import EventStore
import Foundation
import Hummingbird
import Identity
import Logging
import OrderHistory
import Projections
import SalesSummary
import ServiceKit
import ServiceRuntime

/// The Ordering service: carts and orders, its copy of the catalog, the consumer of Catalog's feed, and the
/// orchestrator of the order fulfilment saga.
public enum OrderingService {
    public struct Configuration: Sendable, ConnectionTimeoutConfigurable {
        public var host: String
        public var port: Int
        public var database: DatabaseURL
        /// Where Catalog serves its product feed and takes stock commands.
        public var catalogURL: String
        /// Where Billing takes payment commands.
        public var billingURL: String
        public var feedPollInterval: Duration
        /// Where its SQLite views live.
        public var viewsDirectory: URL
        /// Its metrics, served at GET /metrics.
        public var metrics = ServiceMetrics()
        /// How long a connection may stay idle, or take to send a request, before it is closed.
        public var connectionTimeout: Duration = ShopHTTPServer.idleTimeout
        /// The fulfilment saga's retries, polling and concurrency.
        public var saga: FulfilmentOrchestrator.Configuration
        /// The saga's deadline for each step.
        public var deadlines: FulfilmentSteps.Deadlines
        /// The secret the shop's processes sign their service tokens with ($SHOP_SERVICE_SECRET, at least 32 bytes).
        public var serviceSecret: Data

        public init(host: String = "127.0.0.1", port: Int = 8082, database: DatabaseURL, catalogURL: String, billingURL: String,
                    feedPollInterval: Duration = .milliseconds(500), viewsDirectory: URL,
                    saga: FulfilmentOrchestrator.Configuration = .init(), deadlines: FulfilmentSteps.Deadlines = .init(),
                    serviceSecret: Data) {
            self.host = host
            self.port = port
            self.database = database
            self.catalogURL = catalogURL
            self.billingURL = billingURL
            self.feedPollInterval = feedPollInterval
            self.viewsDirectory = viewsDirectory
            self.saga = saga
            self.deadlines = deadlines
            self.serviceSecret = serviceSecret
        }
    }

    public static func application(_ configuration: Configuration, logger: Logger) async throws -> some ApplicationProtocol {
        let identity = try await ServiceIdentity(name: "ordering", secret: configuration.serviceSecret)
        let store = EventStore(.init(database: configuration.database), logger: logger)
        let history = try Projector(OrderHistory(), store: store, directory: configuration.viewsDirectory, logger: logger)
        let sales = try Projector(SalesSummary(), store: store, directory: configuration.viewsDirectory, logger: logger)
        let copy = CatalogCopy(store: store)
        let metrics = configuration.metrics
        let orchestrator = FulfilmentOrchestrator(
            sagas: Sagas(store: store),
            steps: FulfilmentSteps(catalogURL: configuration.catalogURL, billingURL: configuration.billingURL, deadlines: configuration.deadlines,
                                  identity: identity, logger: logger),
            configuration: configuration.saga, logger: logger, metrics: metrics)
        let router = Router()
        metrics.install(on: router)
        let retention = IdempotencyKeyRetention(store: store)
        Health(store: store, projectors: [history, sales], checks: [orchestrator.stall, { retention.check() }]).addRoutes(to: router)
        router.add(middleware: AuthenticateCaller(identity, audience: "ordering"))
        OrderingAPI(store: store, copy: copy, orchestrator: orchestrator).addRoutes(to: router)
        OrderFeed.feed(store).addRoutes(to: router)
        OrderQueries(history: history, sales: sales).addRoutes(to: router)
        let views = ViewsStatus([history, sales])
        views.addRoutes(to: router)
        views.export(to: metrics)
        SagaRoutes(sagas: orchestrator.sagas, orchestrator: orchestrator).addRoutes(to: router)
        let consumer = CatalogFeedConsumer(copy: copy, catalogURL: configuration.catalogURL,
                                           pollInterval: configuration.feedPollInterval, identity: identity, logger: logger)
        return Application(
            router: router,
            server: ShopHTTPServer.http1(idleTimeout: configuration.connectionTimeout, readTimeout: configuration.connectionTimeout),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "shop-ordering"),
            services: [store, consumer, history, sales, orchestrator, retention] + orchestrator.steps.downstreams,
            logger: logger)
    }
}
