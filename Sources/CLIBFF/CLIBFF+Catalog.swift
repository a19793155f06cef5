import Contracts
import Essentials
import Foundation
import Gateway
import Hummingbird
import ServiceKit
import SharedKernel

extension CLIBFF {
    /// The public catalog: no token needed.
    func addCatalogRoutes(to api: DocumentedRoutes) {
        let services = services, pages = pages
        let sku = Endpoint.Parameter.sku
        api.on(.get, "/products", Endpoint(
            "listProducts", "Products for sale with what is available now, 50 a page; `q` searches names and descriptions.",
            access: .anyone,
            query: [.init("q", "Words to search for.", Schema.words(maximum: 200), example: "mug"), .init("after", "The `next` of the page before.", example: "MUG-001")],
            answers: [200: .init("A page of products.", Schema.ref("Products"))], errors: [400: "A malformed `after`, or an empty `q`."])
        ) { request, context in
            let path = CatalogRoutes.products(search: try request.query("q"), limit: "50", after: try request.query("after"))
            return Wire.json(data: try await pages.page("cli:" + path) {
                let page = try await services.catalog.forward(.GET, path, for: request, context: context).decode(ProductPage.self)
                return try JSONEncoder.sortedKeys.encode(Products(products: page.products, next: page.next))
            }.body)
        }
        api.on(.get, "/products/{sku}", Endpoint(
            "showProduct", "One product: its description, price and what is available now.", access: .anyone, path: [sku],
            answers: [200: .init("The product.", Schema.ref("Product"))], errors: [404: "There is no such product."])
        ) { request, context in
            let path = CatalogRoutes.product(try context.parameters.text("sku"))
            return Wire.json(data: try await pages.page("cli:" + path) {
                let product = try await services.catalog.forward(.GET, path, for: request, context: context).decode(ProductDetail.self)
                return try JSONEncoder.sortedKeys.encode(ProductView(
                    sku: product.sku, name: product.name, description: product.description, price: product.price,
                    available: product.stock.available, discontinued: product.discontinued))
            }.body)
        }
    }
}
