import Foundation
import Gateway
import Hummingbird
import NIOCore
import NIOHTTP1
import ServiceKit

/// The BFF of the web client, under `/web/v1`: answers shaped for pages (a product page with its stock, an
/// order page combining the order, its saga, its payment and its timeline), a checkout that answers 202 at
/// once with where to follow it, a server-sent-events stream of an order's status, and the back office for
/// admins.
public struct WebBFF: Sendable {
    let services: Downstreams
    /// How long an order's event stream stays open at most.
    let streamLimit: Duration

    public init(services: Downstreams, streamLimit: Duration = .seconds(60)) {
        self.services = services
        self.streamLimit = streamLimit
    }

    // What the services answer (only what this BFF reads).
    typealias Money = OrderDocument.Money
    struct Product: Codable, Sendable { let sku: String, name: String, description: String?, price: Money, available: Int, discontinued: Bool }
    struct ProductPage: Decodable { let products: [Product], next: String? }
    struct Cart: Codable, Sendable {
        struct Item: Codable, Sendable { let sku: String, quantity: Int, name: String?, unitPrice: Money? }
        let items: [Item], version: Int64
    }
    struct Payment: Codable, Sendable { let status: String, authorised: Money?, captured: Money?, refunded: Money? }
    struct Detail: Decodable {
        struct Step: Codable, Sendable { let status: String, reason: String?, at: String }
        struct Body: Decodable { let timeline: [Step] }
        let order: Body
    }
    struct OrderList: Decodable { let orders: [OrderSummary] }
    struct OrderSummary: Codable, Sendable { let order: String, status: String, total: Money, reason: String?, placedAt: String }
    struct SagaList: Decodable { let sagas: [Saga] }
    struct Saga: Codable, Sendable { let id: String, status: String, step: String?, reason: String?, updatedAt: Date }

    // What the pages get.
    struct ProductsPage: Encodable { let products: [Product], next: String? }
    struct OrderPage: Encodable {
        let order: String, status: String, reason: String?, total: OrderDocument.Money?, lines: [OrderDocument.Line]
        let fulfilment: OrderDocument.Fulfilment?
        let payment: Payment?
        let timeline: [Detail.Step]
        let links: [String: String]
    }
    struct Accepted: Encodable { let order: String, status: String, links: [String: String] }

    // What the pages send.
    struct AddItem: Codable, Sendable { let sku: String, quantity: Int }
    struct Checkout: Codable, Sendable { let card: String }

    public func addRoutes(to router: Router<GatewayContext>) {
        let web = router.group("/web/v1")
        // Public: the catalog.
        web.get("/products") { request, context -> Response in
            let query = request.uri.queryParameters
            var path = query["q"].map { "/products/search?q=\(Wire.segment(String($0)))" } ?? "/products?"
            if let limit = query["limit"] { path += "&limit=\(Wire.segment(String(limit)))" }
            if let after = query["after"] { path += "&after=\(Wire.segment(String(after)))" }
            let page = try await services.catalog.forward(.GET, path, for: request, context: context).decode(ProductPage.self)
            return try Self.cacheable(ProductsPage(products: page.products, next: page.next), request)
        }
        web.get("/products/{sku}") { request, context -> Response in
            let sku = try context.parameters.require("sku")
            let answer = try await services.catalog.forward(.GET, "/products/\(Wire.segment(sku))", for: request, context: context)
            try answer.requireSuccess()
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: answer.body))
        }

        // The customer's cart, checkout and orders.
        web.get("/cart") { request, context -> Response in
            let customer = try context.customer()
            let cart = try await services.cart(Cart.self, of: customer, for: request, context: context)
            return try Wire.json(cart, etag: "\"\(cart.version)\"")
        }
        web.post("/cart/items") { request, context -> Response in
            let customer = try context.customer()
            let body = try JSONBody.decode(AddItem.self, from: try await JSONBody.bytes(of: request))
            try await services.ordering.forward(.POST, "/carts/\(Wire.segment(customer))/items", json: body, for: request, context: context).requireSuccess()
            let cart = try await services.cart(Cart.self, of: customer, for: request, context: context)
            return try Wire.json(cart, etag: "\"\(cart.version)\"")
        }
        web.delete("/cart/items/{sku}") { request, context -> Response in
            let customer = try context.customer(), sku = try context.parameters.require("sku")
            try await services.ordering.forward(.DELETE, "/carts/\(Wire.segment(customer))/items/\(Wire.segment(sku))", for: request, context: context)
                .requireSuccess()
            let cart = try await services.cart(Cart.self, of: customer, for: request, context: context)
            return try Wire.json(cart, etag: "\"\(cart.version)\"")
        }
        web.post("/checkout") { request, context -> Response in
            let customer = try context.customer()
            let body = try JSONBody.decode(Checkout.self, from: try await JSONBody.bytes(of: request))
            let order = try await services.checkout(card: body.card, of: customer, for: request, context: context)
            let links = Self.links(order)
            return try Wire.json(Accepted(order: order, status: "processing", links: links), status: .accepted, location: links["self"])
        }
        web.get("/orders") { request, context -> Response in
            let customer = try context.customer()
            let list = try await services.ordering.forward(.GET, "/customers/\(Wire.segment(customer))/orders?limit=50", for: request, context: context)
                .decode(OrderList.self)
            return try Self.cacheable(["orders": list.orders], request)
        }
        web.get("/orders/{id}") { request, context -> Response in
            let customer = try context.customer(), id = try context.parameters.require("id")
            let order = try await services.order(id, of: customer, for: request, context: context)
            async let payment = services.billing.forward(.GET, "/payments/\(Wire.segment(id))", for: request, context: context)
            async let detail = services.ordering.forward(.GET, "/orders/\(Wire.segment(id))/detail", for: request, context: context)
            let paid = try await payment, detailed = try await detail
            let page = OrderPage(
                order: order.order, status: order.status, reason: order.reason, total: order.total, lines: order.lines,
                fulfilment: order.fulfilment, payment: paid.status == .notFound ? nil : try paid.decode(Payment.self),
                timeline: detailed.status == .notFound ? [] : try detailed.decode(Detail.self).order.timeline, links: Self.links(id))
            return try Self.cacheable(page, request)
        }
        web.get("/orders/{id}/events") { request, context -> Response in
            let customer = try context.customer(), id = try context.parameters.require("id")
            let first = try await services.order(id, of: customer, for: request, context: context)
            return events(first, of: customer, request, context)
        }

        // The back office: the admin role.
        let admin = web.group("/admin")
        admin.post("/products") { request, context -> Response in
            _ = try context.admin()
            return try await pass(services.catalog, .POST, "/products", request, context)
        }
        admin.put("/products/{sku}/price") { request, context -> Response in
            _ = try context.admin()
            return try await pass(services.catalog, .PUT, "/products/\(Wire.segment(try context.parameters.require("sku")))/price", request, context)
        }
        admin.post("/products/{sku}/discontinue") { request, context -> Response in
            _ = try context.admin()
            return try await pass(services.catalog, .POST, "/products/\(Wire.segment(try context.parameters.require("sku")))/discontinue", request, context)
        }
        admin.post("/products/{sku}/stock") { request, context -> Response in
            _ = try context.admin()
            return try await pass(services.catalog, .POST, "/products/\(Wire.segment(try context.parameters.require("sku")))/stock", request, context)
        }
        admin.post("/orders/{id}/ship") { request, context -> Response in
            _ = try context.admin()
            return try await pass(services.ordering, .POST, "/orders/\(Wire.segment(try context.parameters.require("id")))/ship", request, context)
        }
        admin.get("/sagas") { request, context -> Response in
            _ = try context.admin()
            let status = request.uri.queryParameters["status"].map { "?status=\(Wire.segment(String($0)))" } ?? ""
            return try await pass(services.ordering, .GET, "/admin/sagas\(status)", request, context)
        }
        admin.post("/sagas/{id}/retry") { request, context -> Response in
            _ = try context.admin()
            return try await pass(services.ordering, .POST, "/admin/sagas/\(Wire.segment(try context.parameters.require("id")))/retry", request, context)
        }
    }

    /// The order's status as server-sent events: its status now, then each change, until it is settled (or
    /// the stream's limit). `event: status`, `data: {"order":…,"status":…,"reason":…}`.
    private func events(_ first: OrderDocument, of customer: String, _ request: Request, _ context: GatewayContext) -> Response {
        let services = self.services, limit = streamLimit
        let body = ResponseBody { writer in
            let deadline = ContinuousClock.now + limit
            var current = first
            var sent: String?
            while true {
                if current.status != sent {
                    let data = try JSONEncoder.sortedKeys.encode(["order": current.order, "status": current.status, "reason": current.reason ?? ""])
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
        ["self": "/web/v1/orders/\(Wire.segment(order))", "events": "/web/v1/orders/\(Wire.segment(order))/events"]
    }

    /// A page with a strong ETag of its content; `If-None-Match` with it answers 304.
    static func cacheable(_ value: some Encodable, _ request: Request) throws -> Response {
        let data = try JSONEncoder.sortedKeys.encode(value)
        let etag = "\"\(Wire.digest(data))\""
        if request.headers[.ifNoneMatch] == etag { return Response(status: .notModified, headers: [.eTag: etag]) }
        return Response(status: .ok, headers: [.contentType: "application/json", .eTag: etag], body: .init(byteBuffer: ByteBuffer(data: data)))
    }
}
