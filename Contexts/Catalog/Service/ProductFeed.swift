import Catalog
import Contracts
import EventStore
import Foundation
import Hummingbird
import ServiceKit

/// `GET /feed/products?after=POSITION&limit=N`: Catalog's product events, translated into the published
/// contract (``CatalogFeed``), in commit order. A consumer keeps `next` as its checkpoint.
struct ProductFeed: Sendable {
    let store: EventStore

    func addRoutes(to router: Router<some RequestContext>) {
        router.get("/feed/products") { request, _ -> Response in
            let after: Position
            if let text = request.uri.queryParameters.get("after") {
                guard let position = Position(text) else {
                    throw Problem.badRequest("malformed-position", "'after' must be a position such as 7391-1204, as a page's 'next' gives")
                }
                after = position
            } else {
                after = .start
            }
            let limit = request.uri.queryParameters.get("limit").flatMap(Int.init) ?? 100
            guard (1...1000).contains(limit) else { throw Problem.badRequest("malformed-limit", "'limit' must be between 1 and 1000") }
            let page = try await page(after: after, limit: limit)
            return try CommandReply.json(.ok, page).response(replayed: false)
        }
    }

    func page(after: Position, limit: Int) async throws -> CatalogFeed.Page {
        let recorded = try await store.readAll(after: after, limit: limit, types: Array(CatalogEvents.product.typeNames))
        let entries = try recorded.map { recorded in
            CatalogFeed.Entry(position: recorded.position.description, id: recorded.id.uuidString.lowercased(),
                              event: Self.published(try recorded.decode(with: CatalogEvents.product)))
        }
        return CatalogFeed.Page(events: entries, next: (recorded.last?.position ?? after).description)
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
