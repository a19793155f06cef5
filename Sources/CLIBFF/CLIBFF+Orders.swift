import Contracts
import Essentials
import Foundation
import Gateway
import Hummingbird
import ServiceKit
import SharedKernel

extension CLIBFF {
    /// The customer's cart, checkout and orders.
    func addOrderRoutes(to api: DocumentedRoutes) {
        let services = services
        let order = Endpoint.Parameter.orderID
        let cart: Endpoint.Answer = .init("The cart now.", Schema.ref("Cart"))
        api.on(.get, "/cart", Endpoint("showCart", "The customer's cart, with its total.", access: .customer, answers: [200: cart])) {
            request, context in
            try await cartView(of: try context.customer(), request, context)
        }
        CartCommands(services: services).addRoutes(to: api, answer: cart) { customer, request, context in
            try await cartView(of: customer, request, context)
        }

        // Checkout and orders.
        api.on(.post, "/checkout", Endpoint(
            "checkout",
            """
            Places an order from the cart and pays with the card; waits up to `wait` seconds (default 10, at most 30) for the \
            outcome. The Idempotency-Key names the order: a retry with the same key is the same checkout.
            """,
            access: .customer, query: [.init("wait", "Seconds to wait for the outcome.", Schema.integer(minimum: 0, maximum: 30), example: 10)],
            body: (Schema.object(["card": Schema.string]), ["card": "4242 4242 4242 4242"]), command: true,
            answers: [200: .init("The order's outcome: confirmed or rejected (with the reason).", Schema.ref("Order")),
                      202: .init("Still processing after the wait: follow the order's status.", Schema.ref("Order"))],
            errors: [409: "The cart is empty, or this key was used for another request.", 422: "The card number is not 12 to 19 digits."])
        ) { request, context in
            let customer = try context.customer()
            let wait = try Self.seconds(request, "wait", default: checkoutWait, maximum: 30)
            let body = try JSONBody.decode(Checkout.self, from: try await JSONBody.bytes(of: request))
            let order = try await services.checkout(card: body.card, of: customer, for: request, context: context)
            let placed = try await services.order(order, of: customer, wait: wait, for: request, context: context)
            return try Wire.json(Outcome(placed, status: placed.isSettled ? nil : "processing"), status: placed.isSettled ? .ok : .accepted)
        }
        api.on(.get, "/orders", Endpoint(
            "listOrders", "The customer's 20 latest orders.", access: .customer,
            answers: [200: .init("The orders, latest first.", Schema.ref("OrderList"))])
        ) { request, context in
            let customer = try context.customer()
            let list = try await services.ordering.forward(.GET, OrderingRoutes.orders(of: customer, limit: 20, ownWrites: true), for: request, context: context)
                .decode(OrderList.self)
            return try Wire.json(["orders": list.orders])
        }
        api.on(.get, "/orders/{id}", Endpoint(
            "showOrder", "One of the customer's orders: its status, the saga's step while it runs, the reason of a rejection.",
            access: .customer, path: [order],
            query: [.init("wait", "Seconds to wait for the order to settle (confirmed, rejected, cancelled or shipped).",
                          Schema.integer(minimum: 0, maximum: 10), example: 1)],
            answers: [200: .init("The order.", Schema.ref("Order"))], errors: [404: "The customer has no such order."])
        ) { request, context in
            let wait = try Self.seconds(request, "wait", default: 0, maximum: 10)
            let order = try await services.order(try context.parameters.text("id"), of: try context.customer(), wait: wait, for: request,
                                                 context: context)
            return try Wire.json(Outcome(order))
        }
        api.on(.post, "/orders/{id}/cancel", Endpoint(
            "cancelOrder", "Cancels an order that has not shipped; a paid one is refunded.", access: .customer, path: [order],
            body: (Schema.object(["reason": Schema.string]), ["reason": "changed my mind"]), command: true,
            answers: [200: .init("The order now.", Schema.ref("Order"))],
            errors: [404: "The customer has no such order.", 409: "The order has shipped, or is already settled that way."])
        ) { request, context in
            let id = try context.parameters.text("id")
            let body = try JSONBody.decode(Cancel.self, from: try await JSONBody.bytes(of: request))
            let customer = try context.customer()
            _ = try await services.order(id, of: customer, for: request, context: context)
            try await services.ordering.forward(.POST, OrderingRoutes.cancel(id), json: body, for: request, context: context).requireSuccess()
            return try Wire.json(Outcome(try await services.order(id, of: customer, for: request, context: context), lines: false))
        }
    }
}
