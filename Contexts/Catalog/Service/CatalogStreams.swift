import Catalog
import EventStore

/// Catalog's streams: one per product, one per SKU's stock.
enum CatalogStreams {
    static func product(_ sku: SKU) -> StreamName { try! StreamName(category: "product", id: sku.rawValue) }
    static func stock(_ sku: SKU) -> StreamName { try! StreamName(category: "stock", id: sku.rawValue) }
}
