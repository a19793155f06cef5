import Catalog
import Contracts
import EventStore
import ServiceKit
import ServiceRuntime

/// Catalog's published product feed: `GET /feed/products`, its product events as ``CatalogFeed`` events.
enum ProductFeed {
    static func feed(_ store: EventStore) -> PublishedFeed<CatalogFeed.Event> {
        PublishedFeed(store: store, path: "/feed/products", types: CatalogEvents.product.typeNames) { recorded in
            published(try recorded.decode(with: CatalogEvents.product))
        }
    }

    /// Internal event to public contract: the one place that knows both.
    static func published(_ event: Product.Event) -> CatalogFeed.Event {
        switch event {
        case .added(let e): .productListed(sku: e.sku.rawValue, name: e.name, price: e.price)
        case .renamed(let e): .productRenamed(sku: e.sku.rawValue, name: e.name)
        case .priceChanged(let e): .productRepriced(sku: e.sku.rawValue, price: e.price)
        case .discontinued(let e): .productDiscontinued(sku: e.sku.rawValue)
        }
    }
}
