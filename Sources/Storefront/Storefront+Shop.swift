import Contracts
import Foundation
import Gateway
import Hummingbird
import ServiceKit
import SharedKernel
import WebBFF

extension Storefront {
    // What the services answer: the web BFF's shapes, and what only the pages read.
    typealias Product = WebBFF.Product
    typealias ProductPage = WebBFF.ProductPage
    typealias Cart = WebBFF.Cart
    typealias Payment = WebBFF.Payment
    struct ProductDetail: Decodable {
        struct Stock: Decodable { let onHand: Int, reserved: Int, available: Int }
        let sku: String, name: String, description: String?, price: Money, discontinued: Bool, stock: Stock
    }
    struct OrderList: Decodable {
        struct Summary: Decodable { let order: String, status: OrderStatus, total: Money, reason: String?, placedAt: String }
        let orders: [Summary]
    }
    struct AddItem: Encodable, Sendable { let sku: String, quantity: Int }
    struct SetQuantity: Encodable, Sendable { let quantity: Int }
    struct Cancel: Encodable, Sendable { let reason: String }

    // What the templates get.
    struct ProductCard {
        let sku: String, path: String, name: String, description: String?, price: String, available: Int, inStock: Bool, discontinued: Bool
        let form: AddToCart
    }
    /// The add-to-cart form of a product: its own key, and what was sent if it comes back with a problem.
    struct AddToCart { let sku: String, id: String, key: String, quantity: String, error: String? }
    struct CatalogPage { let query: String?, products: [ProductCard], next: String?, searched: Bool }
    struct CartPage {
        struct Line { let sku: String, path: String, id: String, name: String, quantity: Int, unitPrice: String, total: String, key: String, error: String? }
        let lines: [Line], total: String?, empty: Bool
        let checkoutKey: String, card: String, cardError: String?, formError: String?
        let testCards: [TestCard]
    }
    struct TestCard { let number: String, outcome: String }
    struct OrdersPage {
        struct Row { let order: String, path: String, status: String, total: String, reason: String?, placedAt: String }
        let orders: [Row]
    }
    struct OrderView {
        struct Line { let name: String, sku: String, quantity: Int, unitPrice: String? }
        struct Step { let status: String, reason: String?, at: String }
        let order: String, path: String, status: String, reason: String?, total: String?, lines: [Line], timeline: [Step]
        let payment: String?, fulfilment: String?, settled: Bool, cancellable: Bool, cancelKey: String, error: String?
    }

    static let testCards = [
        TestCard(number: "4242 4242 4242 4242", outcome: "approved"),
        TestCard(number: "4000 0000 0000 0002", outcome: "declined: card declined"),
        TestCard(number: "4000 0000 0000 9995", outcome: "declined: insufficient funds"),
        TestCard(number: "4000 0000 0000 0119", outcome: "the provider fails (retried)"),
    ]

    func addShopRoutes(to pages: RouterGroup<GatewayContext>) {
        let services = services, web = web, sessions = sessions, renderer = self.pages

        pages.get("/") { request, context in
            try await catalog(request, context)
        }
        pages.get("/products/{sku}") { request, context in
            try await product(try context.parameters.text("sku"), request, context)
        }
        pages.post("/cart/items") { request, context in
            let (form, visit) = try await sessions.form(request, context)
            let customer = try context.customer(), sku = form.text("sku")
            do {
                guard let quantity = Int(form.text("quantity")) else {
                    throw FieldProblem(field: "quantity", "the quantity is a whole number from 1 to 99")
                }
                try await services.ordering.forward(.POST, OrderingRoutes.cartItems(customer), json: AddItem(sku: sku, quantity: quantity),
                                                    for: request, context: context, key: try form.key()).requireSuccess()
                return Self.seeOther("/cart")
            } catch {
                guard let problem = error as? FieldProblem ?? FieldProblem(error, field: "quantity") else { throw error }
                return try await product(sku, request, context, visit: visit, form: (form.text("quantity"), problem))
            }
        }
        pages.get("/cart") { request, context in
            try await cart(request, context)
        }
        pages.post("/cart/items/{sku}") { request, context in
            let (form, visit) = try await sessions.form(request, context)
            let customer = try context.customer(), sku = try context.parameters.text("sku")
            do {
                let quantity = form["remove"] != nil ? 0 : Int(form.text("quantity"))
                guard let quantity else { throw FieldProblem(field: sku, "the quantity is a whole number from 0 to 99") }
                let route = OrderingRoutes.cartItem(customer, sku: sku), key = try form.key()
                let answer = quantity == 0
                    ? try await services.ordering.forward(.DELETE, route, for: request, context: context, key: key)
                    : try await services.ordering.forward(.PUT, route, json: SetQuantity(quantity: quantity), for: request, context: context, key: key)
                try answer.requireSuccess()
                return Self.seeOther("/cart")
            } catch {
                guard let problem = error as? FieldProblem ?? FieldProblem(error, field: sku) else { throw error }
                return try await cart(request, context, visit: visit, problem: problem)
            }
        }
        pages.post("/checkout") { request, context in
            let (form, visit) = try await sessions.form(request, context)
            let customer = try context.customer(), card = form.text("card")
            do {
                let order = try await services.checkout(card: card, of: customer, key: try form.key(), for: request, context: context)
                return Self.seeOther("/orders/\(segment(order))")
            } catch {
                // An empty cart, a key used before, is the form's; anything else about the card is the card's.
                let field = (error as? PassedOn)?.status == .conflict ? "form" : "card"
                guard let problem = FieldProblem(error, field: field) else { throw error }
                return try await cart(request, context, visit: visit, problem: problem, card: card)
            }
        }
        pages.get("/orders") { request, context in
            let visit = sessions.visit(request, context), customer = try context.customer()
            let list = try await services.ordering.forward(.GET, OrderingRoutes.orders(of: customer, limit: 50, ownWrites: true),
                                                           for: request, context: context).decode(OrderList.self)
            let rows = list.orders.map {
                OrdersPage.Row(order: $0.order, path: "/orders/\(segment($0.order))", status: $0.status.rawValue, total: $0.total.description,
                               reason: $0.reason, placedAt: Self.shortDate($0.placedAt))
            }
            return renderer.render("orders", title: "Your orders", OrdersPage(orders: rows), visit)
        }
        pages.get("/orders/{id}") { request, context in
            try await order(try context.parameters.text("id"), request, context)
        }
        pages.get("/orders/{id}/events") { request, context in
            try await web.followOrder(try context.parameters.text("id"), of: try context.customer(), request, context)
        }
        pages.post("/orders/{id}/cancel") { request, context in
            let (form, visit) = try await sessions.form(request, context)
            let customer = try context.customer(), id = try context.parameters.text("id")
            do {
                _ = try await services.order(id, of: customer, for: request, context: context)
                try await services.ordering.forward(.POST, OrderingRoutes.cancel(id), json: Cancel(reason: "cancelled by the customer"),
                                                    for: request, context: context, key: try form.key()).requireSuccess()
                return Self.seeOther("/orders/\(segment(id))")
            } catch {
                guard let problem = FieldProblem(error, field: "cancel"), problem.status != .notFound else { throw error }
                return try await order(id, request, context, visit: visit, problem: problem)
            }
        }
    }

    func catalog(_ request: Request, _ context: GatewayContext) async throws -> Response {
        let visit = sessions.visit(request, context)
        let query = try request.query("q").map { $0.trimmingCharacters(in: .whitespaces) }.flatMap { $0.isEmpty ? nil : $0 }
        let path = CatalogRoutes.products(search: query, limit: "12", after: try request.query("after"))
        let page = try await services.catalog.forward(.GET, path, for: request, context: context).decode(ProductPage.self)
        let next = page.next.map { next in "/?" + [query.map { "q=\(segment($0))" }, "after=\(segment(next))"].compactMap { $0 }.joined(separator: "&") }
        let content = CatalogPage(query: query, products: page.products.map { Self.card($0) }, next: next, searched: query != nil)
        return pages.render("catalog", title: query.map { "Search: \($0)" } ?? "Catalog", content, visit)
    }

    static func card(_ product: Product) -> ProductCard {
        ProductCard(sku: product.sku, path: "/products/\(segment(product.sku))", name: product.name, description: product.description,
                    price: product.price.description, available: product.available, inStock: product.available > 0 && !product.discontinued,
                    discontinued: product.discontinued,
                    form: AddToCart(sku: product.sku, id: fieldID(product.sku), key: newKey(), quantity: "1", error: nil))
    }

    /// The product page; `form`: the add-to-cart form as it was sent, and its problem.
    func product(_ sku: String, _ request: Request, _ context: GatewayContext, visit: Visit? = nil,
                 form: (quantity: String, problem: FieldProblem)? = nil) async throws -> Response {
        let visit = visit ?? sessions.visit(request, context)
        let answer = try await services.catalog.forward(.GET, CatalogRoutes.product(sku), for: request, context: context)
        let detail = try answer.decode(ProductDetail.self)
        var card = Self.card(Product(sku: detail.sku, name: detail.name, description: detail.description, price: detail.price,
                                     available: detail.stock.available, discontinued: detail.discontinued))
        if let form {
            card = ProductCard(sku: card.sku, path: card.path, name: card.name, description: card.description, price: card.price,
                               available: card.available, inStock: card.inStock, discontinued: card.discontinued,
                               form: AddToCart(sku: card.sku, id: card.form.id, key: Self.newKey(), quantity: form.quantity, error: form.problem.message))
        }
        return pages.render("product", title: detail.name, card, visit, status: form?.problem.status ?? .ok)
    }

    /// The cart page; `problem`: a form of it sent back, and `card` the card number it held.
    func cart(_ request: Request, _ context: GatewayContext, visit: Visit? = nil, problem: FieldProblem? = nil, card: String = "") async throws -> Response {
        let visit = visit ?? sessions.visit(request, context), customer = try context.customer()
        let cart = try await services.cart(Cart.self, of: customer, for: request, context: context)
        var total: Money?
        let lines = cart.items.map { item in
            let lineTotal = item.unitPrice.flatMap { try? $0.multiplied(by: item.quantity) }
            if let lineTotal { total = total.map { (try? $0.adding(lineTotal)) ?? $0 } ?? lineTotal }
            return CartPage.Line(sku: item.sku, path: "/products/\(segment(item.sku))", id: Self.fieldID(item.sku), name: item.name ?? item.sku,
                                 quantity: item.quantity, unitPrice: item.unitPrice?.description ?? "–", total: lineTotal?.description ?? "–",
                                 key: Self.newKey(), error: problem?.message(for: item.sku))
        }
        let content = CartPage(lines: lines, total: total?.description, empty: lines.isEmpty, checkoutKey: Self.newKey(), card: card,
                               cardError: problem?.message(for: "card"), formError: problem?.message(for: "form"), testCards: Self.testCards)
        return pages.render("cart", title: "Your cart", content, visit, status: problem?.status ?? .ok)
    }

    /// The order page: while its saga runs, the script follows it live (or, without scripts, the page refreshes).
    func order(_ id: String, _ request: Request, _ context: GatewayContext, visit: Visit? = nil, problem: FieldProblem? = nil) async throws -> Response {
        let visit = visit ?? sessions.visit(request, context)
        let page = try await web.orderPage(id, of: try context.customer(), request, context)
        let payment = page.payment.map(Self.summary)
        let fulfilment = page.fulfilment.map { [$0.status.rawValue, $0.step].compactMap { $0 }.joined(separator: ": ") }
        let view = OrderView(
            order: page.order, path: "/orders/\(segment(page.order))", status: page.status.rawValue, reason: page.reason,
            total: page.total?.description,
            lines: page.lines.map { .init(name: $0.name, sku: $0.sku, quantity: $0.quantity, unitPrice: $0.unitPrice?.description) },
            timeline: page.timeline.map { .init(status: $0.status.rawValue, reason: $0.reason, at: Self.shortDate($0.at)) },
            payment: payment, fulfilment: fulfilment, settled: page.status.isSettled,
            cancellable: ![.shipped, .rejected, .cancelled].contains(page.status), cancelKey: Self.newKey(),
            error: problem?.message)
        return pages.render("order", title: "Order \(page.order)", view, visit, status: problem?.status ?? .ok, refresh: !page.status.isSettled)
    }

    /// A payment in a few words: what was authorised, captured and refunded (or its status, before any of it).
    static func summary(_ payment: Payment) -> String {
        let amounts = [payment.authorised.map { "authorised \($0)" }, payment.captured.map { "captured \($0)" },
                       payment.refunded.map { "refunded \($0)" }].compactMap { $0 }
        return amounts.isEmpty ? payment.status.rawValue : amounts.joined(separator: " · ")
    }

    /// An HTML id made of a SKU (which may hold any character).
    static func fieldID(_ text: String) -> String {
        "f-" + Wire.digest(Data(text.utf8)).prefix(12)
    }

    /// `2026-12-05T09:41:07.123Z` as `2026-12-05 09:41:07`.
    static func shortDate(_ text: String) -> String {
        String(text.prefix(19)).replacingOccurrences(of: "T", with: " ")
    }
}

