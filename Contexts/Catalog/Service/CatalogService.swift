import EventStore
import Foundation
import Hummingbird
import Identity
import Logging
import ProductListing
import Projections
import ServiceKit
import ServiceRuntime

/// The Catalog service: its event store and its HTTP API, as one Hummingbird application.
public enum CatalogService {
    public struct Configuration: Sendable, ConnectionTimeoutConfigurable {
        public var host: String
        public var port: Int
        public var database: DatabaseURL
        /// Where its SQLite views live.
        public var viewsDirectory: URL
        /// Its metrics, served at GET /metrics.
        public var metrics = ServiceMetrics()
        /// How long a connection may stay idle, or take to send a request, before it is closed.
        public var connectionTimeout: Duration = ShopHTTPServer.idleTimeout
        /// The secret the shop's processes sign their service tokens with ($SHOP_SERVICE_SECRET, at least 32 bytes).
        public var serviceSecret: Data

        public init(host: String = "127.0.0.1", port: Int = 8081, database: DatabaseURL, viewsDirectory: URL, serviceSecret: Data) {
            self.host = host
            self.port = port
            self.database = database
            self.viewsDirectory = viewsDirectory
            self.serviceSecret = serviceSecret
        }
    }

    public static func application(_ configuration: Configuration, logger: Logger) async throws -> some ApplicationProtocol {
        let identity = try await ServiceIdentity(name: "catalog", secret: configuration.serviceSecret)
        let store = EventStore(.init(database: configuration.database), logger: logger)
        let listing = try Projector(ProductListing(), store: store, directory: configuration.viewsDirectory, logger: logger)
        let router = Router()
        let metrics = configuration.metrics
        metrics.install(on: router)
        let retention = IdempotencyKeyRetention(store: store)
        Health(store: store, projectors: [listing], checks: [{ retention.check() }]).addRoutes(to: router)
        router.add(middleware: AuthenticateCaller(identity, audience: "catalog"))
        CatalogAPI(store: store).addRoutes(to: router)
        ProductFeed.feed(store).addRoutes(to: router)
        ProductQueries(listing: listing).addRoutes(to: router)
        let views = ViewsStatus([listing])
        views.addRoutes(to: router)
        views.export(to: metrics)
        return Application(
            router: router,
            server: ShopHTTPServer.http1(idleTimeout: configuration.connectionTimeout, readTimeout: configuration.connectionTimeout),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "shop-catalog"),
            services: [store, listing, retention],
            logger: logger)
    }
}
