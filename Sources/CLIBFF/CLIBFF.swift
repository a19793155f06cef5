import Contracts
import Essentials
import Foundation
import Gateway
import Hummingbird
import ServiceKit
import SharedKernel

/// The BFF of the `shop` command-line client, under `/cli/v1`: compact answers for a terminal, and a checkout
/// that waits (bounded) for the order's outcome. Customers' routes act for the token's subject: there is no
/// customer id in a path to guess, and another customer's order answers 404. Every route is registered with its
/// documentation: `/cli/openapi.json` lists exactly these.
public struct CLIBFF: Sendable {
    let services: Downstreams
    let login: DevelopmentLogin
    /// The public catalog pages, kept briefly.
    let pages: PageCache
    /// How long a checkout waits for the saga's outcome, at most, before answering "still processing".
    let checkoutWait: Int

    public init(services: Downstreams, login: DevelopmentLogin, pages: PageCache, checkoutWait: Int = 10) {
        self.services = services
        self.login = login
        self.pages = pages
        self.checkoutWait = max(0, min(checkoutWait, 30))
    }

    // What the services answer (only what this BFF reads).
    struct ProductPage: Decodable { let products: [Product], next: String? }
    struct Product: Codable, Sendable { let sku: String, name: String, price: Money, available: Int }
    struct ProductDetail: Decodable {
        struct Stock: Decodable { let available: Int }
        let sku: String, name: String, description: String, price: Money, discontinued: Bool, stock: Stock
    }
    struct Cart: Decodable { let items: [CartItem] }
    struct CartItem: Codable, Sendable { let sku: String, quantity: Int, name: String?, unitPrice: Money? }
    struct OrderSummary: Codable, Sendable { let order: String, status: OrderStatus, total: Money, reason: String?, placedAt: String }
    struct OrderList: Decodable { let orders: [OrderSummary] }

    // What the client gets.
    struct Products: Encodable { let products: [Product], next: String? }
    struct ProductView: Encodable { let sku: String, name: String, description: String, price: Money, available: Int, discontinued: Bool }
    struct CartView: Encodable { let items: [CartItem], total: Money? }
    struct Me: Encodable { let subject: String, role: String, expiresAt: Date }
    struct Outcome: Encodable {
        let order: String, status: String, reason: String?, total: Money?, lines: [OrderDocument.Line]?
        let step: String?
        init(_ order: OrderDocument, status: String? = nil, lines: Bool = true) {
            self.order = order.order
            self.status = status ?? order.status.rawValue
            reason = order.reason
            total = order.total
            self.lines = lines ? order.lines : nil
            step = order.isSettled ? nil : order.fulfilment?.step
        }
    }

    // What the client sends.
    struct Checkout: Codable, Sendable { let card: String }
    struct Cancel: Codable, Sendable { let reason: String }

    /// Adds the routes under `/cli/v1` and the document at `/cli/openapi.json`.
    public func addRoutes(to router: Router<GatewayContext>) throws {
        let api = DocumentedRoutes(router, prefix: "/cli/v1")
        let sku = Endpoint.Parameter.sku, order = Endpoint.Parameter.orderID
        let cart: Endpoint.Answer = .init("The cart now.", Schema.ref("Cart"))

        login.addRoute(to: api)
        api.on(.get, "/me", Endpoint("whoami", "Who the token speaks for, and until when.", access: .signedIn,
                                      answers: [200: .init("The token's claims.", Schema.ref("Me"))])) { _, context in
            guard let claims = context.claims else { throw Problem.unauthorised("this route needs a bearer token") }
            return try Wire.json(Me(subject: claims.subject, role: claims.role.rawValue, expiresAt: claims.expiresAt))
        }

        // The public catalog: no token needed.
        api.on(.get, "/products", Endpoint(
            "listProducts", "Products for sale with what is available now, 50 a page; `q` searches names and descriptions.",
            access: .anyone,
            query: [.init("q", "Words to search for.", Schema.words(maximum: 200), example: "mug"), .init("after", "The `next` of the page before.", example: "MUG-001")],
            answers: [200: .init("A page of products.", Schema.ref("Products"))], errors: [400: "A malformed `after`, or an empty `q`."])
        ) { request, context in
            let path = CatalogRoutes.products(search: try request.query("q"), limit: "50", after: try request.query("after"))
            let catalogPath = path
            return Wire.json(data: try await pages.page("cli:" + path) {
                let page = try await services.catalog.forward(.GET, catalogPath, for: request, context: context).decode(ProductPage.self)
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

        // The customer's cart.
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
            let list = try await services.ordering.forward(.GET, OrderingRoutes.orders(of: customer, limit: 20), for: request, context: context)
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

        try api.serve(
            api.document(title: "Shop CLI API", version: "1", description: "The API of the `shop` command-line client: compact answers for a terminal.",
                         schemas: Self.schemas),
            at: "/cli/openapi.json", on: router)
    }

    private func cartView(of customer: String, _ request: Request, _ context: GatewayContext) async throws -> Response {
        let cart = try await services.cart(Cart.self, of: customer, for: request, context: context)
        return try Wire.json(CartView(items: cart.items, total: Self.total(cart.items)))
    }

    static func total(_ items: [CartItem]) -> Money? {
        guard let currency = items.first?.unitPrice?.currency,
            items.allSatisfy({ $0.unitPrice?.currency == currency })
        else { return nil }
        // Each line's total, summed in the checked arithmetic of Money (a total past its maximum has none).
        return try? items.reduce(Money.zero(currency)) { total, item in
            try total.adding(try (item.unitPrice ?? .zero(currency)).multiplied(by: item.quantity))
        }
    }

    /// A whole number of seconds from the query, 0 to `maximum`.
    static func seconds(_ request: Request, _ name: String, default value: Int, maximum: Int) throws -> Int {
        guard let text = request.uri.queryParameters[Substring(name)] else { return value }
        guard let seconds = Int(String(text)), (0...maximum).contains(seconds) else {
            throw Problem.badRequest("malformed-\(name)", "\(name) is a whole number of seconds, 0 to \(maximum)")
        }
        return seconds
    }

    static let schemas: [String: JSON] = [
        "Money": OrderDocument.moneySchema,
        "Session": DevelopmentLogin.sessionSchema,
        "Me": Schema.object(["subject": Schema.string, "role": Schema.string(["customer", "admin"]), "expiresAt": Schema.dateTime]),
        "Products": Schema.object(["products": Schema.array(Schema.object(
            ["sku": Schema.string, "name": Schema.string, "price": Schema.ref("Money"), "available": Schema.integer]))],
            optional: ["next": Schema.string]),
        "Product": Schema.object(["sku": Schema.string, "name": Schema.string, "description": Schema.string, "price": Schema.ref("Money"),
                                  "available": Schema.integer, "discontinued": Schema.boolean]),
        "Cart": Schema.object(["items": Schema.array(Schema.object(["sku": Schema.string, "quantity": Schema.integer],
                                                                   optional: ["name": Schema.string, "unitPrice": Schema.ref("Money")]))],
                              optional: ["total": Schema.ref("Money")]),
        "Order": Schema.object(
            ["order": Schema.string, "status": Schema.string(OrderDocument.statuses + ["processing"])],
            optional: ["reason": Schema.string, "total": Schema.ref("Money"), "step": Schema.string, "lines": Schema.array(OrderDocument.lineSchema)]),
        "OrderList": Schema.object(["orders": Schema.array(Schema.object(
            ["order": Schema.string, "status": Schema.string, "total": Schema.ref("Money"), "placedAt": Schema.dateTime],
            optional: ["reason": Schema.string]))]),
    ]
}
