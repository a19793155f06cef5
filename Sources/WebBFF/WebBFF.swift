import Contracts
import Essentials
import Foundation
import Gateway
import Hummingbird
import NIOCore
import NIOHTTP1
import ServiceClient
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

    // What the services answer (only what this BFF and the web shop's pages read).
    public struct Product: Codable, Sendable {
        public let sku: String, name: String, description: String?, price: Money, available: Int, discontinued: Bool
        public init(sku: String, name: String, description: String?, price: Money, available: Int, discontinued: Bool) {
            (self.sku, self.name, self.description, self.price, self.available, self.discontinued) = (sku, name, description, price, available, discontinued)
        }
    }
    public struct ProductPage: Decodable, Sendable { public let products: [Product], next: String? }
    public struct Cart: Codable, Sendable {
        public struct Item: Codable, Sendable { public let sku: String, quantity: Int, name: String?, unitPrice: Money? }
        public let items: [Item], version: Int64
    }
    public struct Payment: Codable, Sendable { public let status: PaymentStatus, authorised: Money?, captured: Money?, refunded: Money? }
    public struct Detail: Codable {
        public struct Step: Codable, Sendable { public let status: OrderStatus, reason: String?, at: String }
        struct Body: Codable { let timeline: [Step] }
        let order: Body
    }
    struct OrderList: Codable { let orders: [OrderSummary] }
    struct OrderSummary: Codable, Sendable { let order: String, status: OrderStatus, total: Money, reason: String?, placedAt: String }

    // What the pages get.
    struct ProductsPage: Codable { let products: [Product], next: String? }
    /// An order as its page shows it: the order, its saga's progress, its payment and its timeline.
    public struct OrderPage: Codable, Sendable {
        public let order: String, status: OrderStatus, reason: String?, total: Money?, lines: [OrderDocument.Line]
        public let fulfilment: OrderDocument.Fulfilment?
        public let payment: Payment?
        public let timeline: [Detail.Step]
        public let links: [String: String]
    }
    struct Accepted: Codable { let order: String, status: String, links: [String: String] }

    // What the pages send.
    struct Checkout: Codable, Sendable { let card: String }

    /// Adds the routes under `/web/v1` and the document at `/web/openapi.json`.
    public func addRoutes(to router: Router<GatewayContext>) throws {
        let api = DocumentedRoutes(router, prefix: "/web/v1")
        login.addRoute(to: api)

        addCatalogRoutes(to: api)
        addOrderRoutes(to: api)
        addBackOfficeRoutes(to: api)

        try api.serve(
            api.document(title: "Shop web API", version: "1", description: "The API of the web shop: answers shaped for its pages, and the back office.",
                         schemas: Self.schemas),
            at: "/web/openapi.json", on: router)
    }

    func cartPage(of customer: String, _ request: Request, _ context: GatewayContext) async throws -> Response {
        let cart = try await services.cart(Cart.self, of: customer, for: request, context: context)
        return try Wire.json(cart, etag: "\"\(cart.version)\"")
    }

    /// The customer's order as its page shows it (404 for another customer's).
    public func orderPage(_ id: String, of customer: String, _ request: Request, _ context: GatewayContext) async throws -> OrderPage {
        let order = try await services.order(id, of: customer, for: request, context: context)
        async let payment = services.billing.forward(.GET, BillingRoutes.payment(id), for: request, context: context)
        async let detail = services.ordering.forward(.GET, OrderingRoutes.orderDetail(id, ownWrites: true), for: request, context: context)
        let paid = try await payment, detailed = try await detail
        return OrderPage(
            order: order.order, status: order.status, reason: order.reason, total: order.total, lines: order.lines,
            fulfilment: order.fulfilment, payment: paid.status == .notFound ? nil : try paid.decode(Payment.self),
            timeline: detailed.status == .notFound ? [] : try detailed.decode(Detail.self).order.timeline, links: Self.links(id))
    }

    /// The customer's order followed as server-sent events (404 for another customer's).
    public func followOrder(_ id: String, of customer: String, _ request: Request, _ context: GatewayContext) async throws -> Response {
        events(try await services.order(id, of: customer, for: request, context: context), of: customer, request, context)
    }

    /// The order's status as server-sent events: its status now, then each change, until it is settled (or
    /// the stream's limit). `event: status`, `data: {"order":…,"status":…,"reason":…}`.
    func events(_ first: OrderDocument, of customer: String, _ request: Request, _ context: GatewayContext) -> Response {
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
    func pass(_ service: Downstream, _ method: HTTPMethod, _ path: String, _ request: Request, _ context: GatewayContext) async throws -> Response {
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
                optional: ["step": string, "reason": string, "dueAt": dateTime, "timeline": Schema.array(Schema.object(
                    ["step": string, "attempt": integer, "outcome": string, "startedAt": dateTime, "finishedAt": dateTime],
                    optional: ["reason": string]))]),
        ]
    }()
}
