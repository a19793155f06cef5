import Contracts
import Essentials
import Foundation
import Gateway
import Hummingbird
import ServiceKit
import SharedKernel

extension WebBFF {
    /// The back office: every route is the admin role's.
    func addBackOfficeRoutes(to api: DocumentedRoutes) {
        let services = services
        let sku = Endpoint.Parameter.sku, orderID = Endpoint.Parameter.orderID
        let written: Endpoint.Answer = .init("Done: the stream written and its version.", Schema.ref("Written"))
        let price = Schema.object(["price": Schema.ref("Money")])
        api.on(.post, "/admin/products", Endpoint(
            "addProduct", "Adds a product to the catalog.", access: .admin,
            body: (Schema.object(["sku": Schema.string, "name": Schema.string, "price": Schema.ref("Money")], optional: ["description": Schema.string]),
                   ["sku": "TEA-042", "name": "Earl Grey, 100 g", "description": "Loose leaf black tea with bergamot.",
                    "price": ["amount": 650, "currency": "EUR"]]),
            command: true, answers: [201: written],
            errors: [409: "The SKU is taken, or this key was used for another request.", 422: "A name, SKU or price the catalog refuses."])
        ) { request, context in
            return try await pass(services.catalog, .POST, CatalogRoutes.products(), request, context)
        }
        api.on(.put, "/admin/products/{sku}/price", Endpoint(
            "repriceProduct", "Changes a product's price.", access: .admin, path: [sku],
            body: (price, ["price": ["amount": 1350, "currency": "EUR"]]), command: true, answers: [200: written],
            errors: [404: "There is no such product.", 409: "The product is discontinued.", 422: "A price the catalog refuses."])
        ) { request, context in
            return try await pass(services.catalog, .PUT, CatalogRoutes.price(try context.parameters.text("sku")), request, context)
        }
        api.on(.post, "/admin/products/{sku}/discontinue", Endpoint(
            "discontinueProduct", "Takes a product off sale for good.", access: .admin, path: [sku], command: true, answers: [200: written],
            errors: [404: "There is no such product."])
        ) { request, context in
            return try await pass(services.catalog, .POST, CatalogRoutes.discontinue(try context.parameters.text("sku")), request, context)
        }
        api.on(.post, "/admin/products/{sku}/stock", Endpoint(
            "receiveStock", "Receives stock of a product.", access: .admin, path: [sku],
            body: (Schema.object(["quantity": Schema.integer(minimum: 1)]), ["quantity": 24]), command: true, answers: [200: written],
            errors: [404: "There is no such product.", 422: "A quantity below 1."])
        ) { request, context in
            return try await pass(services.catalog, .POST, CatalogRoutes.stock(try context.parameters.text("sku")), request, context)
        }
        api.on(.post, "/admin/orders/{id}/ship", Endpoint(
            "shipOrder", "Ships a confirmed order.", access: .admin, path: [orderID], command: true, answers: [200: written],
            errors: [404: "There is no such order.", 409: "The order is not confirmed."])
        ) { request, context in
            return try await pass(services.ordering, .POST, OrderingRoutes.ship(try context.parameters.text("id")), request, context)
        }
        api.on(.get, "/admin/sagas", Endpoint(
            "listSagas", "Fulfilment sagas, latest first; `status=parked` lists those waiting for an operator.", access: .admin,
            query: [.init("status", "Only sagas in this state.", Schema.string(SagaStatus.allCases.map(\.rawValue)),
                          example: "parked")],
            answers: [200: .init("The sagas.", Schema.object(["sagas": Schema.array(Schema.ref("Saga"))]))], errors: [400: "An unknown status."])
        ) { request, context in
            return try await pass(services.ordering, .GET, OrderingRoutes.sagas(status: try request.query("status")), request, context)
        }
        api.on(.post, "/admin/sagas/{id}/retry", Endpoint(
            "retrySaga", "Re-drives a parked saga (its id is its order's).", access: .admin, path: [orderID], command: true,
            answers: [200: .init("The saga, running again.", Schema.ref("Saga"))],
            errors: [404: "There is no such saga.", 422: "The saga is not parked."])
        ) { request, context in
            return try await pass(services.ordering, .POST, OrderingRoutes.retrySaga(try context.parameters.text("id")), request, context)
        }
    }
}
