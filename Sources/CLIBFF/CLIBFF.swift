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
    struct OrderList: Codable { let orders: [OrderSummary] }

    // What the client gets.
    struct Products: Codable { let products: [Product], next: String? }
    struct ProductView: Codable { let sku: String, name: String, description: String, price: Money, available: Int, discontinued: Bool }
    struct CartView: Codable { let items: [CartItem], total: Money? }
    struct Me: Codable { let subject: String, role: String, expiresAt: Date }
    struct Outcome: Codable {
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

        login.addRoute(to: api)
        api.on(.get, "/me", Endpoint("whoami", "Who the token speaks for, and until when.", access: .signedIn,
                                      answers: [200: .init("The token's claims.", Schema.ref("Me"))])) { _, context in
            guard let claims = context.claims else { throw Problem.unauthorised("this route needs a bearer token") }
            return try Wire.json(Me(subject: claims.subject, role: claims.role.rawValue, expiresAt: claims.expiresAt))
        }

        addCatalogRoutes(to: api)
        addOrderRoutes(to: api)

        try api.serve(
            api.document(title: "Shop CLI API", version: "1", description: "The API of the `shop` command-line client: compact answers for a terminal.",
                         schemas: Self.schemas),
            at: "/cli/openapi.json", on: router)
    }

    func cartView(of customer: String, _ request: Request, _ context: GatewayContext) async throws -> Response {
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
