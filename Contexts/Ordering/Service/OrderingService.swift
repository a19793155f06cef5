import EventStore
import Foundation
import Hummingbird
import Logging
import OrderHistory
import Projections
import SalesSummary
import ServiceKit

/// The Ordering service: carts and orders, its copy of the catalog, and the consumer of Catalog's feed.
public enum OrderingService {
    public struct Configuration: Sendable {
        public var host: String
        public var port: Int
        public var database: DatabaseURL
        /// Where Catalog serves its product feed.
        public var catalogURL: String
        public var feedPollInterval: Duration
        /// Where its SQLite views live.
        public var viewsDirectory: URL

        public init(host: String = "127.0.0.1", port: Int = 8082, database: DatabaseURL, catalogURL: String,
                    feedPollInterval: Duration = .milliseconds(500), viewsDirectory: URL) {
            self.host = host
            self.port = port
            self.database = database
            self.catalogURL = catalogURL
            self.feedPollInterval = feedPollInterval
            self.viewsDirectory = viewsDirectory
        }
    }

    public static func application(_ configuration: Configuration, logger: Logger) throws -> some ApplicationProtocol {
        let store = EventStore(.init(database: configuration.database), logger: logger)
        let history = try Projector(OrderHistory(), store: store, directory: configuration.viewsDirectory, logger: logger)
        let sales = try Projector(SalesSummary(), store: store, directory: configuration.viewsDirectory, logger: logger)
        let copy = CatalogCopy(store: store)
        let router = Router()
        router.middlewares.add(ProblemMiddleware())
        Health(store: store).addRoutes(to: router)
        OrderingAPI(store: store, copy: copy).addRoutes(to: router)
        OrderFeed.feed(store).addRoutes(to: router)
        OrderQueries(history: history, sales: sales).addRoutes(to: router)
        ViewsStatus([history, sales]).addRoutes(to: router)
        let consumer = CatalogFeedConsumer(copy: copy, catalogURL: configuration.catalogURL,
                                           pollInterval: configuration.feedPollInterval, logger: logger)
        return Application(
            router: router,
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "shop-ordering"),
            services: [store, consumer, history, sales],
            logger: logger)
    }
}
