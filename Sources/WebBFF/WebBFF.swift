import Contracts
import Essentials
import Foundation
import Gateway
import Hummingbird
import NIOCore
import NIOHTTP1
import ServiceKit
import SharedKernel

/// The BFF of the web client, under `/web/v1`: answers shaped for pages (a product page with its stock, an
/// order page combining the order, its saga, its payment and its timeline), a checkout that answers 202 at
/// once with where to follow it, a server-sent-events stream of an order's status, and the back office for
/// admins.
public struct WebBFF: Sendable {
    let services: Downstreams
    let login: DevelopmentLogin
    /// The public catalog pages, kept briefly.
    let pages: PageCache
    /// How long an order's event stream stays open at most.
    let streamLimit: Duration

    public init(services: Downstreams, login: DevelopmentLogin, pages: PageCache, streamLimit: Duration = .seconds(60)) {
        self.services = services
        self.login = login
        self.pages = pages
        self.streamLimit = streamLimit
    }

    // What the services answer (only what this BFF reads).
    struct Product: Codable, Sendable { let sku: String, name: String, description: String?, price: Money, available: Int, discontinued: Bool }
    struct ProductPage: Decodable { let products: [Product], next: String? }
    struct Cart: Codable, Sendable {
        struct Item: Codable, Sendable { let sku: String, quantity: Int, name: String?, unitPrice: Money? }
        let items: [Item], version: Int64
    }
    struct Payment: Codable, Sendable { let status: PaymentStatus, authorised: Money?, captured: Money?, refunded: Money? }
    struct Detail: Decodable {
        struct Step: Codable, Sendable { let status: OrderStatus, reason: String?, at: String }
        struct Body: Decodable { let timeline: [Step] }
        let order: Body
    }
    struct OrderList: Decodable { let orders: [OrderSummary] }
    struct OrderSummary: Codable, Sendable { let order: String, status: OrderStatus, total: Money, reason: String?, placedAt: String }

    // What the pages get.
    struct ProductsPage: Encodable { let products: [Product], next: String? }
    struct OrderPage: Encodable {
        let order: String, status: OrderStatus, reason: String?, total: Money?, lines: [OrderDocument.Line]
        let fulfilment: OrderDocument.Fulfilment?
        let payment: Payment?
        let timeline: [Detail.Step]
        let links: [String: String]
    }
    struct Accepted: Encodable { let order: String, status: String, links: [String: String] }

    // What the pages send.
    struct Checkout: Codable, Sendable { let card: String }

    /// Adds the routes under `/web/v1` and the document at `/web/openapi.json`.
    public func addRoutes(to router: Router<GatewayContext>) throws {
        let api = DocumentedRoutes(router, prefix: "/web/v1")
        let sku = Endpoint.Parameter.sku, orderID = Endpoint.Parameter.orderID
        let cart: Endpoint.Answer = .init("The cart now; its ETag is its version.", Schema.ref("Cart"))
        let notModified: Endpoint.Answer = .init("Unchanged since the ETag given in If-None-Match.")
        let written: Endpoint.Answer = .init("Done: the stream written and its version.", Schema.ref("Written"))

        login.addRoute(to: api)

        // Public: the catalog.
        api.on(.get, "/products", Endpoint(
            "listProducts", "A page of products with what is available now; `q` searches. Cacheable: ETag and If-None-Match.",
            access: .anyone,
            query: [.init("q", "Words to search for.", Schema.words(maximum: 200), example: "mug"), .init("limit", "Products per page (1 to 100).", Schema.integer(minimum: 1, maximum: 100), example: 20),
                    .init("after", "The `next` of the page before.", example: "MUG-001")],
            answers: [200: .init("A page of products.", Schema.ref("ProductsPage")), 304: notModified],
            errors: [400: "A malformed `limit` or `after`, or an empty `q`."])
        ) { request, context in
            let path = CatalogRoutes.products(search: try request.query("q"), limit: try request.query("limit"), after: try request.query("after"))
            let catalogPath = path
            return Self.cacheable(try await pages.page("web:" + path) {
                let page = try await services.catalog.forward(.GET, catalogPath, for: request, context: context).decode(ProductPage.self)
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

        // The customer's cart, checkout and orders.
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
            let list = try await services.ordering.forward(.GET, OrderingRoutes.orders(of: customer, limit: 50), for: request, context: context)
                .decode(OrderList.self)
            return try Self.cacheable(["orders": list.orders], request)
        }
        api.on(.get, "/orders/{id}", Endpoint(
            "showOrder", "The order page: the order, its saga's progress, its payment and its timeline. Cacheable.", access: .customer,
            path: [orderID], answers: [200: .init("The order page.", Schema.ref("OrderPage")), 304: notModified],
            errors: [404: "The customer has no such order."])
        ) { request, context in
            let customer = try context.customer(), id = try context.parameters.text("id")
            let order = try await services.order(id, of: customer, for: request, context: context)
            async let payment = services.billing.forward(.GET, BillingRoutes.payment(id), for: request, context: context)
            async let detail = services.ordering.forward(.GET, OrderingRoutes.orderDetail(id), for: request, context: context)
            let paid = try await payment, detailed = try await detail
            let page = OrderPage(
                order: order.order, status: order.status, reason: order.reason, total: order.total, lines: order.lines,
                fulfilment: order.fulfilment, payment: paid.status == .notFound ? nil : try paid.decode(Payment.self),
                timeline: detailed.status == .notFound ? [] : try detailed.decode(Detail.self).order.timeline, links: Self.links(id))
            return try Self.cacheable(page, request)
        }
        api.on(.get, "/orders/{id}/events", Endpoint(
            "followOrder",
            "Server-sent events: `event: status` with `data: {\"order\",\"status\",\"reason\"}` now and at each change, until the order settles.",
            access: .customer, path: [orderID],
            answers: [200: .init("The event stream.", Schema.string, contentType: "text/event-stream")], errors: [404: "The customer has no such order."])
        ) { request, context in
            let customer = try context.customer(), id = try context.parameters.text("id")
            let first = try await services.order(id, of: customer, for: request, context: context)
            return events(first, of: customer, request, context)
        }

        // The back office: the admin role.
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

        try api.serve(
            api.document(title: "Shop web API", version: "1", description: "The API of the web shop: answers shaped for its pages, and the back office.",
                         schemas: Self.schemas),
            at: "/web/openapi.json", on: router)
    }

    private func cartPage(of customer: String, _ request: Request, _ context: GatewayContext) async throws -> Response {
        let cart = try await services.cart(Cart.self, of: customer, for: request, context: context)
        return try Wire.json(cart, etag: "\"\(cart.version)\"")
    }

    /// The order's status as server-sent events: its status now, then each change, until it is settled (or
    /// the stream's limit). `event: status`, `data: {"order":…,"status":…,"reason":…}`.
    private func events(_ first: OrderDocument, of customer: String, _ request: Request, _ context: GatewayContext) -> Response {
        let services = self.services, limit = streamLimit
        let body = ResponseBody { writer in
            let deadline = ContinuousClock.now + limit
            var current = first
            var sent: OrderStatus?
            while true {
                if current.status != sent {
                    let data = try JSONEncoder.sortedKeys.encode(["order": current.order, "status": current.status.rawValue, "reason": current.reason ?? ""])
                    try await writer.write(ByteBuffer(string: "event: status\ndata: \(String(decoding: data, as: UTF8.self))\n\n"))
                    sent = current.status
                }
                if current.isSettled || ContinuousClock.now >= deadline { break }
                // Ordering answers when the order settles, or after a second: a change in between is sent then.
                current = try await services.order(current.order, of: customer, wait: 1, for: request, context: context)
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: body)
    }

    /// A command passed to a service as it is: its answer, success or problem, goes back to the client.
    private func pass(_ service: Downstream, _ method: HTTPMethod, _ path: String, _ request: Request, _ context: GatewayContext) async throws -> Response {
        var body: ByteBuffer?
        if method != .GET { body = ByteBuffer(data: try await JSONBody.optionalBytes(of: request) ?? Data()) }
        let answer = try await service.forward(method, path, raw: body?.readableBytes == 0 ? nil : body, for: request, context: context)
        if answer.status.code >= 500 { try answer.requireSuccess() }
        var headers: HTTPFields = [.contentType: answer.headers.first(name: "Content-Type") ?? "application/json"]
        if let etag = answer.headers.first(name: "ETag") { headers[.eTag] = etag }
        return Response(status: .init(code: Int(answer.status.code)), headers: headers, body: .init(byteBuffer: answer.body))
    }

    static func links(_ order: String) -> [String: String] {
        ["self": "/web/v1/orders/\(segment(order))", "events": "/web/v1/orders/\(segment(order))/events"]
    }

    /// A page with a strong ETag of its content; `If-None-Match` with it answers 304.
    static func cacheable(_ value: some Encodable, _ request: Request) throws -> Response {
        cacheable(try JSONEncoder.sortedKeys.encode(value), request)
    }

    static func cacheable(_ data: Data, _ request: Request) -> Response {
        cacheable(PageCache.Page(data), request)
    }

    static func cacheable(_ page: PageCache.Page, _ request: Request) -> Response {
        let data = page.body, etag = page.etag
        if request.headers[.ifNoneMatch] == etag { return Response(status: .notModified, headers: [.eTag: etag]) }
        return Response(status: .ok, headers: [.contentType: "application/json", .eTag: etag], body: .init(byteBuffer: ByteBuffer(data: data)))
    }

    static let schemas: [String: JSON] = {
        let money = Schema.ref("Money"), string = Schema.string, integer = Schema.integer, dateTime = Schema.dateTime
        let links = Schema.object(["self": string, "events": string])
        let product = Schema.object(["sku": string, "name": string, "price": money, "available": integer, "discontinued": Schema.boolean],
                                    optional: ["description": string])
        return [
            "Money": OrderDocument.moneySchema,
            "Session": DevelopmentLogin.sessionSchema,
            "ProductsPage": Schema.object(["products": Schema.array(product)], optional: ["next": string]),
            "ProductDetail": Schema.object([
                "sku": string, "name": string, "description": string, "price": money, "discontinued": Schema.boolean, "version": integer,
                "stock": Schema.object(["onHand": integer, "reserved": integer, "available": integer]),
            ]),
            "Cart": Schema.object(["version": integer, "items": Schema.array(Schema.object(
                ["sku": string, "quantity": integer], optional: ["name": string, "unitPrice": money]))]),
            "Accepted": Schema.object(["order": string, "status": Schema.string(["processing"]), "links": links]),
            "OrderList": Schema.object(["orders": Schema.array(Schema.object(
                ["order": string, "status": Schema.string(OrderDocument.statuses), "total": money, "placedAt": dateTime],
                optional: ["reason": string]))]),
            "OrderPage": Schema.object(
                ["order": string, "status": Schema.string(OrderDocument.statuses), "lines": Schema.array(OrderDocument.lineSchema),
                 "timeline": Schema.array(Schema.object(["status": string, "at": dateTime], optional: ["reason": string])), "links": links],
                optional: [
                    "reason": string, "total": money,
                    "fulfilment": Schema.object(["status": string], optional: ["step": string, "reason": string]),
                    "payment": Schema.object(["status": string], optional: ["authorised": money, "captured": money, "refunded": money]),
                ]),
            "Written": Schema.object(["stream": string, "streamVersion": integer], optional: ["position": string]),
            "Saga": Schema.object(
                ["id": string, "status": string, "done": Schema.array(string), "unsure": Schema.array(string), "attempts": integer, "card": string,
                 "startedAt": dateTime, "updatedAt": dateTime],
                optional: ["step": string, "reason": string, "dueAt": dateTime]),
        ]
    }()
}
