import Hummingbird
import SharedKernel
import ProductListing
import Projections
import ServiceKit
import ServiceRuntime

/// Catalog's queries: the product listing and search, read from the SQLite view only.
struct ProductQueries: Sendable {
    let listing: Projector

    struct Page: Encodable {
        let products: [ProductListing.Item]
        /// The `after` of the next page; absent on the last.
        let next: String?
        let view: ViewState
    }

    func addRoutes(to router: Router<some RequestContext>) {
        router.get("/products") { request, _ -> Response in
            let limit = try Self.limit(request)
            let after = try request.query("after")
            let view = try await listing.state(for: request)
            let products = try await listing.read { try ProductListing.page($0, after: after, limit: limit) }
            let next = products.count == limit ? products.last?.sku : nil
            return try CommandReply.json(.ok, Page(products: products, next: next, view: view)).response(replayed: false)
        }
        router.get("/products/search") { request, _ -> Response in
            let limit = try Self.limit(request)
            guard let text = try request.query("q"), !text.trimmingWhitespace.isEmpty else {
                throw Problem.badRequest("missing-query", "search needs ?q= and some words")
            }
            guard text.unicodeScalars.count <= 200 else { throw Problem.badRequest("query-too-long", "a search is at most 200 characters") }
            let view = try await listing.state(for: request)
            let products = try await listing.read { try ProductListing.search($0, text, limit: limit) }
            return try CommandReply.json(.ok, Page(products: products, next: nil, view: view)).response(replayed: false)
        }
    }

    static func limit(_ request: Request) throws -> Int {
        guard let text = request.uri.queryParameters.get("limit") else { return 20 }
        guard let limit = Int(text), (1...100).contains(limit) else {
            throw Problem.badRequest("malformed-limit", "'limit' must be between 1 and 100")
        }
        return limit
    }
}
