import AsyncHTTPClient
import Contracts
import EventStore
import Foundation
import Identity
import Logging
import NIOCore
import PostgresNIO
import ServiceLifecycle
import SharedKernel

/// Ordering's copy of Catalog's public product data, in Ordering's database.
public struct CatalogCopy: Sendable {
    public static let feedName = "catalog-products"
    let store: EventStore

    public init(store: EventStore) { self.store = store }

    public struct Product: Sendable, Equatable {
        public let sku: String, name: String, price: Money, discontinued: Bool
        public init(sku: String, name: String, price: Money, discontinued: Bool) {
            self.sku = sku
            self.name = name
            self.price = price
            self.discontinued = discontinued
        }
    }

    public func product(_ sku: String) async throws -> Product? {
        try await store.withConnection { try await product(sku, on: $0) }
    }

    func product(_ sku: String, on connection: PostgresConnection) async throws -> Product? {
        try await products([sku], on: connection)[sku]
    }

    /// ``products(_:on:)`` for a command: on its transaction's connection, or the pool's when it is planned.
    func products(_ skus: [String], for transaction: EventStore.Transaction) async throws -> [String: Product] {
        if let connection = try? transaction.connection { return try await products(skus, on: connection) }
        return try await store.withConnection { try await products(skus, on: $0) }
    }

    /// The products of `skus` that the copy knows, by SKU, in one round trip.
    func products(_ skus: [String], on connection: PostgresConnection) async throws -> [String: Product] {
        let rows = try await connection.query("""
            SELECT sku, name, price_amount, price_currency, discontinued FROM catalog_products WHERE sku = ANY(\(skus))
            """, logger: store.logger)
        var products: [String: Product] = [:]
        for try await (sku, name, amount, currency, discontinued) in rows.decode((String, String, Int64, String, Bool).self) {
            products[sku] = Product(sku: sku, name: name, price: try Money(minorUnits: amount, currency: try Currency(currency)), discontinued: discontinued)
        }
        return products
    }

    /// The position after which the feed continues.
    public func checkpoint() async throws -> Position {
        try await store.withConnection { connection in
            let rows = try await connection.query("SELECT position FROM feed_checkpoints WHERE feed = \(Self.feedName)", logger: store.logger)
            for try await text in rows.decode(String.self) { return Position(text) ?? .start }
            return .start
        }
    }

    /// Applies a page of the feed and moves the checkpoint, in one transaction: at-least-once delivery,
    /// exactly-once effect. Each row keeps the position of the event it reflects, so an event delivered
    /// again (or late) never takes a product back to an older state.
    public func apply(_ page: CatalogFeed.Page) async throws {
        try await store.withTransaction { transaction in
            let connection = try transaction.connection
            for entry in page.events {
                guard let position = Position(entry.position) else { continue }
                let (tx, pos) = (position.transactionID, position.globalPosition)
                let newer = "(catalog_products.feed_transaction, catalog_products.feed_position) < (EXCLUDED.feed_transaction, EXCLUDED.feed_position)"
                switch entry.event {
                case .productListed(let sku, let name, let price):
                    try await connection.run("""
                        INSERT INTO catalog_products (sku, name, price_amount, price_currency, discontinued, feed_transaction, feed_position)
                        VALUES (\(sku), \(name), \(price.minorUnits), \(price.currency.code), false, \(tx), \(pos))
                        ON CONFLICT (sku) DO UPDATE SET name = EXCLUDED.name, price_amount = EXCLUDED.price_amount,
                            price_currency = EXCLUDED.price_currency, feed_transaction = EXCLUDED.feed_transaction,
                            feed_position = EXCLUDED.feed_position
                        WHERE \(unescaped: newer)
                        """, logger: transaction.logger)
                case .productRenamed(let sku, let name):
                    try await connection.run("""
                        UPDATE catalog_products SET name = \(name), feed_transaction = \(tx), feed_position = \(pos)
                        WHERE sku = \(sku) AND (feed_transaction, feed_position) < (\(tx), \(pos))
                        """, logger: transaction.logger)
                case .productRepriced(let sku, let price):
                    try await connection.run("""
                        UPDATE catalog_products SET price_amount = \(price.minorUnits), price_currency = \(price.currency.code),
                            feed_transaction = \(tx), feed_position = \(pos)
                        WHERE sku = \(sku) AND (feed_transaction, feed_position) < (\(tx), \(pos))
                        """, logger: transaction.logger)
                case .productDiscontinued(let sku):
                    try await connection.run("""
                        UPDATE catalog_products SET discontinued = true, feed_transaction = \(tx), feed_position = \(pos)
                        WHERE sku = \(sku) AND (feed_transaction, feed_position) < (\(tx), \(pos))
                        """, logger: transaction.logger)
                }
            }
            try await connection.run("""
                INSERT INTO feed_checkpoints (feed, position) VALUES (\(Self.feedName), \(page.next))
                ON CONFLICT (feed) DO UPDATE SET position = EXCLUDED.position, updated_at = now()
                """, logger: transaction.logger)
        }
    }
}

/// Follows Catalog's product feed over HTTP from the stored checkpoint and applies it to the copy. Runs
/// inside the Ordering service; survives Catalog being down (it retries, and checkout keeps using the copy).
public struct CatalogFeedConsumer: Service {
    let copy: CatalogCopy
    let catalogURL: String
    let pollInterval: Duration
    let identity: ServiceIdentity
    let logger: Logger

    public init(copy: CatalogCopy, catalogURL: String, pollInterval: Duration = .milliseconds(500), identity: ServiceIdentity,
                logger: Logger) {
        self.copy = copy
        self.catalogURL = catalogURL.hasSuffix("/") ? String(catalogURL.dropLast()) : catalogURL
        self.pollInterval = pollInterval
        self.identity = identity
        self.logger = logger
    }

    public func run() async throws {
        await copy.store.waitUntilRunning()
        await cancelWhenGracefulShutdown {
            var failures = 0
            while !Task.isCancelled {
                do {
                    let applied = try await poll()
                    failures = 0
                    if applied == Self.pageSize { continue }
                    try? await Task.sleep(for: pollInterval)
                } catch {
                    if Task.isCancelled { return }
                    failures += 1
                    if failures == 1 || failures.isMultiple(of: 20) {
                        logger.warning("following Catalog's feed failed; retrying", metadata: ["error": "\(describe(error))", "failures": "\(failures)"])
                    }
                    try? await Task.sleep(for: min(pollInterval * failures, .seconds(5)))
                }
            }
        }
    }

    static let pageSize = 100

    /// Fetches the next page after the checkpoint and applies it; returns how many events it applied.
    @discardableResult
    public func poll() async throws -> Int {
        let page = try await fetch(after: try await copy.checkpoint())
        if !page.events.isEmpty { try await copy.apply(page) }
        return page.events.count
    }

    func fetch(after: Position) async throws -> CatalogFeed.Page {
        var request = HTTPClientRequest(url: catalogURL + CatalogRoutes.feed(after: after.description, limit: Self.pageSize))
        request.method = .GET
        request.headers.add(name: "Authorization", value: try await identity.authorization(to: "catalog"))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(5))
        let body = try await response.body.collect(upTo: 4 * 1024 * 1024)
        guard response.status == .ok else { throw FeedError(status: Int(response.status.code)) }
        return try JSONDecoder().decode(CatalogFeed.Page.self, from: Data(buffer: body))
    }

    struct FeedError: Error, CustomStringConvertible {
        let status: Int
        var description: String { "Catalog's feed answered \(status)" }
    }
}
