import Foundation
import Gateway
import Hummingbird
import ServiceKit

/// The BFF of the `shop` command-line client, under `/cli/v1`: compact answers for a terminal, and a checkout
/// that waits (bounded) for the order's outcome. Customers' routes act for the token's subject: there is no
/// customer id in a path to guess, and another customer's order answers 404.
public struct CLIBFF: Sendable {
    let services: Downstreams
    /// How long a checkout waits for the saga's outcome before answering "still processing".
    let checkoutWait: Int

    public init(services: Downstreams, checkoutWait: Int = 10) {
        self.services = services
        self.checkoutWait = max(0, min(checkoutWait, 30))
    }

    // What the services answer (only what this BFF reads).
    typealias Money = OrderDocument.Money
    struct ProductPage: Decodable { let products: [Product], next: String? }
    struct Product: Codable, Sendable { let sku: String, name: String, price: Money, available: Int }
    struct Cart: Decodable { let items: [CartItem] }
    struct CartItem: Codable, Sendable { let sku: String, quantity: Int, name: String?, unitPrice: Money? }
    struct OrderSummary: Codable, Sendable { let order: String, status: String, total: Money, reason: String?, placedAt: String }
    struct OrderList: Decodable { let orders: [OrderSummary] }

    // What the client gets.
    struct Products: Encodable { let products: [Product], next: String? }
    struct CartView: Encodable { let items: [CartItem], total: Money? }
    struct Outcome: Encodable {
        let order: String, status: String, reason: String?, total: OrderDocument.Money?, lines: [OrderDocument.Line]?
        init(_ order: OrderDocument, status: String? = nil, lines: Bool = true) {
            self.order = order.order
            self.status = status ?? order.status
            reason = order.reason
            total = order.total
            self.lines = lines ? order.lines : nil
        }
    }

    // What the client sends.
    struct AddItem: Codable, Sendable { let sku: String, quantity: Int }
    struct Checkout: Codable, Sendable { let card: String }
    struct Cancel: Codable, Sendable { let reason: String }

    public func addRoutes(to router: Router<GatewayContext>) {
        let cli = router.group("/cli/v1")
        // The public catalog: no token needed.
        cli.get("/products") { request, context -> Response in
            let query = request.uri.queryParameters
            var path = query["q"].map { "/products/search?q=\(Wire.segment(String($0)))&limit=50" } ?? "/products?limit=50"
            if let after = query["after"] { path += "&after=\(Wire.segment(String(after)))" }
            let page = try await services.catalog.forward(.GET, path, for: request, context: context).decode(ProductPage.self)
            return try Wire.json(Products(products: page.products, next: page.next))
        }
        cli.get("/cart") { request, context -> Response in
            let customer = try context.customer()
            let cart = try await services.cart(Cart.self, of: customer, for: request, context: context)
            return try Wire.json(CartView(items: cart.items, total: Self.total(cart.items)))
        }
        cli.post("/cart/items") { request, context -> Response in
            let customer = try context.customer()
            let body = try JSONBody.decode(AddItem.self, from: try await JSONBody.bytes(of: request))
            try await services.ordering.forward(.POST, "/carts/\(Wire.segment(customer))/items", json: body, for: request, context: context)
                .requireSuccess()
            let cart = try await services.cart(Cart.self, of: customer, for: request, context: context)
            return try Wire.json(CartView(items: cart.items, total: Self.total(cart.items)))
        }
        cli.post("/checkout") { request, context -> Response in
            let customer = try context.customer()
            let body = try JSONBody.decode(Checkout.self, from: try await JSONBody.bytes(of: request))
            let order = try await services.checkout(card: body.card, of: customer, for: request, context: context)
            let placed = try await services.order(order, of: customer, wait: checkoutWait, for: request, context: context)
            return try Wire.json(Outcome(placed, status: placed.isSettled ? nil : "processing"), status: placed.isSettled ? .ok : .accepted)
        }
        cli.get("/orders") { request, context -> Response in
            let customer = try context.customer()
            let list = try await services.ordering.forward(.GET, "/customers/\(Wire.segment(customer))/orders?limit=20", for: request, context: context)
                .decode(OrderList.self)
            return try Wire.json(["orders": list.orders])
        }
        cli.get("/orders/{id}") { request, context -> Response in
            let order = try await services.order(try context.parameters.require("id"), of: try context.customer(), for: request, context: context)
            return try Wire.json(Outcome(order))
        }
        cli.post("/orders/{id}/cancel") { request, context -> Response in
            let id = try context.parameters.require("id")
            let body = try JSONBody.decode(Cancel.self, from: try await JSONBody.bytes(of: request))
            let customer = try context.customer()
            _ = try await services.order(id, of: customer, for: request, context: context)
            try await services.ordering.forward(.POST, "/orders/\(Wire.segment(id))/cancel", json: body, for: request, context: context).requireSuccess()
            return try Wire.json(Outcome(try await services.order(id, of: customer, for: request, context: context), lines: false))
        }
    }

    static func total(_ items: [CartItem]) -> Money? {
        guard let currency = items.first?.unitPrice?.currency,
            items.allSatisfy({ $0.unitPrice?.currency == currency })
        else { return nil }
        return Money(amount: items.reduce(0) { $0 + ($1.unitPrice?.amount ?? 0) * Int64($1.quantity) }, currency: currency)
    }

}
