import Contracts
import Essentials
import Foundation
import Gateway
import Hummingbird
import ServiceKit
import SharedKernel

extension WebBFF {
    /// The customer's cart, checkout and orders.
    func addOrderRoutes(to api: DocumentedRoutes) {
        let services = services
        let orderID = Endpoint.Parameter.orderID
        let notModified: Endpoint.Answer = .init("Unchanged since the ETag given in If-None-Match.")
        let cart: Endpoint.Answer = .init("The cart now; its ETag is its version.", Schema.ref("Cart"))
        api.on(.get, "/cart", Endpoint("showCart", "The customer's cart.", access: .customer, answers: [200: cart])) { request, context in
            try await cartPage(of: try context.customer(), request, context)
        }
        CartCommands(services: services).addRoutes(to: api, answer: cart) { customer, request, context in
            try await cartPage(of: customer, request, context)
        }
        api.on(.post, "/checkout", Endpoint(
            "checkout",
            "Places an order from the cart, paid with the card, and answers at once: follow `links.self` or `links.events`. The Idempotency-Key names the order.",
            access: .customer, body: (Schema.object(["card": Schema.string]), ["card": "4242 4242 4242 4242"]), command: true,
            answers: [202: .init("The order is placed; its saga runs.", Schema.ref("Accepted"))],
            errors: [409: "The cart is empty, or this key was used for another request.", 422: "The card number is not 12 to 19 digits."])
        ) { request, context in
            let customer = try context.customer()
            let body = try JSONBody.decode(Checkout.self, from: try await JSONBody.bytes(of: request))
            let order = try await services.checkout(card: body.card, of: customer, for: request, context: context)
            let links = Self.links(order)
            return try Wire.json(Accepted(order: order, status: "processing", links: links), status: .accepted, location: links["self"])
        }
        api.on(.get, "/orders", Endpoint(
            "listOrders", "The customer's 50 latest orders. Cacheable.", access: .customer,
            answers: [200: .init("The orders, latest first.", Schema.ref("OrderList")), 304: notModified])
        ) { request, context in
            let customer = try context.customer()
            let list = try await services.ordering.forward(.GET, OrderingRoutes.orders(of: customer, limit: 50, ownWrites: true), for: request, context: context)
                .decode(OrderList.self)
            return try Self.cacheable(["orders": list.orders], request)
        }
        api.on(.get, "/orders/{id}", Endpoint(
            "showOrder", "The order page: the order, its saga's progress, its payment and its timeline. Cacheable.", access: .customer,
            path: [orderID], answers: [200: .init("The order page.", Schema.ref("OrderPage")), 304: notModified],
            errors: [404: "The customer has no such order."])
        ) { request, context in
            return try Self.cacheable(try await orderPage(try context.parameters.text("id"), of: try context.customer(), request, context), request)
        }
        api.on(.get, "/orders/{id}/events", Endpoint(
            "followOrder",
            "Server-sent events: `event: status` with `data: {\"order\",\"status\",\"reason\"}` now and at each change, until the order settles.",
            access: .customer, path: [orderID],
            answers: [200: .init("The event stream.", Schema.string, contentType: "text/event-stream")], errors: [404: "The customer has no such order."])
        ) { request, context in
            try await followOrder(try context.parameters.text("id"), of: try context.customer(), request, context)
        }
    }
}
