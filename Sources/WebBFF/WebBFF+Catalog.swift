import Contracts
import Essentials
import Foundation
import Gateway
import Hummingbird
import ServiceKit
import SharedKernel

extension WebBFF {
    /// Public: the catalog, cacheable.
    func addCatalogRoutes(to api: DocumentedRoutes) {
        let services = services, pages = pages
        let sku = Endpoint.Parameter.sku
        let notModified: Endpoint.Answer = .init("Unchanged since the ETag given in If-None-Match.")
        api.on(.get, "/products", Endpoint(
            "listProducts", "A page of products with what is available now; `q` searches. Cacheable: ETag and If-None-Match.",
            access: .anyone,
            query: [.init("q", "Words to search for.", Schema.words(maximum: 200), example: "mug"), .init("limit", "Products per page (1 to 100).", Schema.integer(minimum: 1, maximum: 100), example: 20),
                    .init("after", "The `next` of the page before.", example: "MUG-001")],
            answers: [200: .init("A page of products.", Schema.ref("ProductsPage")), 304: notModified],
            errors: [400: "A malformed `limit` or `after`, or an empty `q`."])
        ) { request, context in
            let path = CatalogRoutes.products(search: try request.query("q"), limit: try request.query("limit"), after: try request.query("after"))
            return Self.cacheable(try await pages.page("web:" + path) {
                let page = try await services.catalog.forward(.GET, path, for: request, context: context).decode(ProductPage.self)
                return try JSONEncoder.sortedKeys.encode(ProductsPage(products: page.products, next: page.next))
            }, request)
        }
        api.on(.get, "/products/{sku}", Endpoint(
            "showProduct", "The product page: description, price, stock on hand, reserved and available.", access: .anyone, path: [sku],
            answers: [200: .init("The product.", Schema.ref("ProductDetail")), 304: notModified], errors: [404: "There is no such product."])
        ) { request, context in
            let path = CatalogRoutes.product(try context.parameters.text("sku"))
            return Self.cacheable(try await pages.page("web:" + path) {
                let answer = try await services.catalog.forward(.GET, path, for: request, context: context)
                try answer.requireSuccess()
                return Data(buffer: answer.body)
            }, request)
        }
    }
}
