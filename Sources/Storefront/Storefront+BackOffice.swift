import Contracts
import Foundation
import Gateway
import Hummingbird
import ServiceClient
import ServiceKit
import SharedKernel

extension Storefront {
    // What Ordering, Billing and the views answer (only what the pages show).
    struct Saga: Decodable {
        struct Entry: Decodable { let step: String, attempt: Int, outcome: String, reason: String?, startedAt: String, finishedAt: String }
        let id: String, status: SagaStatus, step: String?, reason: String?, done: [String], attempts: Int, card: String
        let dueAt: String?, startedAt: String, updatedAt: String, timeline: [Entry]?
    }
    struct Sagas: Decodable { let sagas: [Saga] }
    struct Views: Decodable {
        struct View: Decodable {
            struct Lag: Decodable { let events: Int, seconds: Double }
            let name: String, version: Int, generation: Int, position: String, eventsHandled: Int, lag: Lag, lastBatchAt: String?, rebuilding: Bool?
            let lastRebuild: String?
        }
        let views: [View]
    }
    struct NewProduct: Encodable, Sendable { let sku: String, name: String, description: String, price: Money }
    struct Reprice: Encodable, Sendable { let price: Money }
    struct Receive: Encodable, Sendable { let quantity: Int }

    // What the templates get.
    struct SagaRow {
        let id: String, path: String, status: String, step: String?, reason: String?, attempts: Int, updatedAt: String
        let parked: Bool, retryKey: String
    }
    struct SagasPage {
        struct Filter { let name: String, path: String, current: Bool }
        let filters: [Filter], sagas: [SagaRow], status: String?
    }
    struct OrderTrace {
        struct Entry { let step: String, attempt: Int, outcome: String, reason: String?, startedAt: String, finishedAt: String, failed: Bool }
        let order: String, path: String, customer: String, status: String, reason: String?, total: String?
        let lines: [OrderView.Line], payment: String?
        let saga: SagaRow?, done: String?, card: String?, dueAt: String?, timeline: [Entry]
        let shippable: Bool, shipKey: String, error: String?
    }
    struct ProductsAdmin {
        struct Row {
            let sku: String, path: String, id: String, name: String, price: String, amount: String, currency: String, available: Int
            let discontinued: Bool, priceKey: String, stockKey: String, discontinueKey: String, error: String?
        }
        struct NewProductForm { let sku: String, name: String, description: String, price: String, currency: String, key: String }
        struct Choice { let code: String, selected: Bool }
        let products: [Row], next: String?, add: NewProductForm, addErrors: [String: String], currencies: [Choice]
    }
    struct ViewsPage {
        struct Row {
            let service: String, name: String, version: Int, generation: Int, position: String, handled: Int, lagEvents: Int, lagSeconds: String
            let lastBatchAt: String, rebuilding: Bool, lastRebuild: String?, action: String
        }
        struct Unavailable { let service: String, detail: String }
        let views: [Row], unavailable: [Unavailable], rebuilding: String?
    }

    func addBackOfficeRoutes(to pages: RouterGroup<GatewayContext>) {
        let services = services, sessions = sessions, renderer = self.pages

        pages.get("/admin") { _, context in
            _ = try context.admin()
            return Self.seeOther("/admin/orders")
        }
        pages.get("/admin/orders") { request, context in
            let visit = sessions.visit(request, context)
            _ = try context.admin()
            let status = try request.query("status").flatMap { $0.isEmpty ? nil : $0 }
            let list = try await services.ordering.forward(.GET, OrderingRoutes.sagas(status: status), for: request, context: context)
                .decode(Sagas.self)
            let filters = [SagasPage.Filter(name: "all", path: "/admin/orders", current: status == nil)]
                + SagaStatus.allCases.map { .init(name: $0.rawValue, path: "/admin/orders?status=\($0.rawValue)", current: status == $0.rawValue) }
            let content = SagasPage(filters: filters, sagas: list.sagas.map(Self.row), status: status)
            return renderer.render("admin-orders", title: "Orders and sagas", content, visit)
        }
        pages.get("/admin/orders/{id}") { request, context in
            try await trace(try context.parameters.text("id"), request, context)
        }
        pages.post("/admin/sagas/{id}/retry") { request, context in
            try await adminCommand(request, context, back: { "/admin/orders/\(segment($0))" }) { id, form in
                try await services.ordering.forward(.POST, OrderingRoutes.retrySaga(id), for: request, context: context, key: try form.key())
            } failed: { id, visit, problem, _ in
                try await trace(id, request, context, visit: visit, problem: problem)
            }
        }
        pages.post("/admin/orders/{id}/ship") { request, context in
            try await adminCommand(request, context, back: { "/admin/orders/\(segment($0))" }) { id, form in
                try await services.ordering.forward(.POST, OrderingRoutes.ship(id), for: request, context: context, key: try form.key())
            } failed: { id, visit, problem, _ in
                try await trace(id, request, context, visit: visit, problem: problem)
            }
        }
        pages.get("/admin/products") { request, context in
            try await products(request, context)
        }
        pages.post("/admin/products") { request, context in
            let (form, visit) = try await sessions.form(request, context)
            _ = try context.admin()
            var errors: [String: String] = [:]
            var status: HTTPResponse.Status = .unprocessableContent
            do {
                let price = try Self.money(form.text("price"), form.text("currency"), field: "price")
                let product = NewProduct(sku: form.text("sku"), name: form.text("name"), description: form.text("description"), price: price)
                try await services.catalog.forward(.POST, CatalogRoutes.products(), json: product, for: request, context: context, key: try form.key())
                    .requireSuccess()
                return Self.seeOther("/admin/products")
            } catch {
                guard let problem = error as? FieldProblem ?? FieldProblem(error, field: "add") else { throw error }
                errors[problem.field] = problem.message
                status = problem.status
            }
            return try await products(request, context, visit: visit, adding: form, errors: errors, status: status)
        }
        pages.post("/admin/products/{sku}/price") { request, context in
            try await adminCommand(request, context, back: { _ in "/admin/products" }) { sku, form in
                let price = try Self.money(form.text("price"), form.text("currency"), field: sku)
                return try await services.catalog.forward(.PUT, CatalogRoutes.price(sku), json: Reprice(price: price), for: request, context: context,
                                                          key: try form.key())
            } failed: { sku, visit, problem, form in
                try await products(request, context, visit: visit, errors: [sku: problem.message], typed: [sku: form.text("price")], status: problem.status)
            }
        }
        pages.post("/admin/products/{sku}/stock") { request, context in
            try await adminCommand(request, context, back: { _ in "/admin/products" }) { sku, form in
                guard let quantity = Int(form.text("quantity")) else { throw FieldProblem(field: sku, "the quantity is a whole number of 1 or more") }
                return try await services.catalog.forward(.POST, CatalogRoutes.stock(sku), json: Receive(quantity: quantity), for: request,
                                                          context: context, key: try form.key())
            } failed: { sku, visit, problem, _ in
                try await products(request, context, visit: visit, errors: [sku: problem.message], status: problem.status)
            }
        }
        pages.post("/admin/products/{sku}/discontinue") { request, context in
            try await adminCommand(request, context, back: { _ in "/admin/products" }) { sku, form in
                try await services.catalog.forward(.POST, CatalogRoutes.discontinue(sku), for: request, context: context, key: try form.key())
            } failed: { sku, visit, problem, _ in
                try await products(request, context, visit: visit, errors: [sku: problem.message], status: problem.status)
            }
        }
        pages.get("/admin/views") { request, context in
            let visit = sessions.visit(request, context)
            _ = try context.admin()
            var rows: [ViewsPage.Row] = [], unavailable: [ViewsPage.Unavailable] = []
            for (name, service) in [("catalog", services.catalog), ("ordering", services.ordering), ("billing", services.billing)] {
                do {
                    let views = try await service.forward(.GET, ViewRoutes.views, for: request, context: context).decode(Views.self)
                    rows += views.views.map { view in
                        ViewsPage.Row(service: name, name: view.name, version: view.version, generation: view.generation, position: view.position,
                                      handled: view.eventsHandled, lagEvents: view.lag.events, lagSeconds: String(format: "%.1f", view.lag.seconds),
                                      lastBatchAt: view.lastBatchAt.map(Self.shortDate) ?? "–", rebuilding: view.rebuilding ?? false,
                                      lastRebuild: view.lastRebuild, action: "/admin/views/\(name)/\(segment(view.name))/rebuild")
                    }
                } catch {
                    unavailable.append(.init(service: name, detail: FieldProblem.problem(error)?.detail ?? "it did not answer"))
                }
            }
            let content = ViewsPage(views: rows, unavailable: unavailable, rebuilding: try request.query("rebuilding"))
            return renderer.render("admin-views", title: "Views", content, visit)
        }
        pages.post("/admin/views/{service}/{name}/rebuild") { request, context in
            _ = try await sessions.form(request, context)
            _ = try context.admin()
            let name = try context.parameters.text("name")
            let service: Downstream
            switch try context.parameters.text("service") {
            case "catalog": service = services.catalog
            case "ordering": service = services.ordering
            case "billing": service = services.billing
            default: throw Problem.notFound("there is no such service")
            }
            try await service.forward(.POST, ViewRoutes.rebuild(name), for: request, context: context, key: Self.newKey()).requireSuccess()
            return Self.seeOther("/admin/views?rebuilding=\(segment(name))")
        }
    }

    /// A back-office form's command on the `{id}` or `{sku}` of its path: then back to `back`, or, when refused,
    /// the page again with the problem (`failed`).
    func adminCommand(
        _ request: Request, _ context: GatewayContext, back: (String) -> String,
        _ command: (String, Form) async throws -> ServiceClient.Downstream.Response,
        failed: (String, Visit, FieldProblem, Form) async throws -> Response
    ) async throws -> Response {
        let (form, visit) = try await sessions.form(request, context)
        _ = try context.admin()
        let id = try context.parameters.text(context.parameters.get("sku") == nil ? "id" : "sku")
        do {
            try await command(id, form).requireSuccess()
            return Self.seeOther(back(id))
        } catch {
            guard let problem = error as? FieldProblem ?? FieldProblem(error, field: id) else { throw error }
            return try await failed(id, visit, problem, form)
        }
    }

    static func row(_ saga: Saga) -> SagaRow {
        SagaRow(id: saga.id, path: "/admin/orders/\(segment(saga.id))", status: saga.status.rawValue, step: saga.step, reason: saga.reason,
                attempts: saga.attempts, updatedAt: shortDate(saga.updatedAt), parked: saga.status == .parked, retryKey: newKey())
    }

    /// An order as `shop-admin orders trace` shows it: the order, its payment, and its saga with every attempt of every step.
    func trace(_ id: String, _ request: Request, _ context: GatewayContext, visit: Visit? = nil, problem: FieldProblem? = nil) async throws -> Response {
        let visit = visit ?? sessions.visit(request, context)
        _ = try context.admin()
        async let orderAnswer = services.ordering.forward(.GET, OrderingRoutes.order(id), for: request, context: context)
        async let sagaAnswer = services.ordering.forward(.GET, OrderingRoutes.saga(id), for: request, context: context)
        async let paymentAnswer = services.billing.forward(.GET, BillingRoutes.payment(id), for: request, context: context)
        let order = try await orderAnswer.decode(OrderDocument.self)
        let sagaReply = try await sagaAnswer, paymentReply = try await paymentAnswer
        let saga = sagaReply.status == .notFound ? nil : try sagaReply.decode(Saga.self)
        let payment = paymentReply.status == .notFound ? nil : try paymentReply.decode(Payment.self)
        let content = OrderTrace(
            order: order.order, path: "/admin/orders/\(segment(order.order))", customer: order.customer, status: order.status.rawValue,
            reason: order.reason, total: order.total?.description,
            lines: order.lines.map { .init(name: $0.name, sku: $0.sku, quantity: $0.quantity, unitPrice: $0.unitPrice?.description) },
            payment: payment.map(Self.summary),
            saga: saga.map(Self.row), done: saga.map { $0.done.joined(separator: ", ") }, card: saga?.card, dueAt: saga?.dueAt.map(Self.shortDate),
            timeline: (saga?.timeline ?? []).map {
                .init(step: $0.step, attempt: $0.attempt, outcome: $0.outcome, reason: $0.reason, startedAt: Self.shortDate($0.startedAt),
                      finishedAt: Self.shortDate($0.finishedAt), failed: $0.outcome != "succeeded")
            },
            shippable: order.status == .confirmed && saga?.status == .completed, shipKey: Self.newKey(), error: problem?.message)
        return pages.render("admin-order", title: "Order \(order.order)", content, visit, status: problem?.status ?? .ok)
    }

    /// The products with their forms; `adding`, `errors`: forms sent back with their problems (by SKU, or by field of the new product).
    func products(_ request: Request, _ context: GatewayContext, visit: Visit? = nil, adding: Form? = nil, errors: [String: String] = [:],
                  typed prices: [String: String] = [:], status: HTTPResponse.Status = .ok) async throws -> Response {
        let visit = visit ?? sessions.visit(request, context)
        _ = try context.admin()
        let path = CatalogRoutes.products(limit: "50", after: try request.query("after"))
        let page = try await services.catalog.forward(.GET, path, for: request, context: context).decode(ProductPage.self)
        let rows = page.products.map { product in
            let minor = product.price.minorUnits
            return ProductsAdmin.Row(
                sku: product.sku, path: "/admin/products/\(segment(product.sku))", id: Self.fieldID(product.sku), name: product.name,
                price: product.price.description, amount: prices[product.sku] ?? "\(minor / 100).\(String(format: "%02d", minor % 100))",
                currency: product.price.currency.code, available: product.available, discontinued: product.discontinued,
                priceKey: Self.newKey(), stockKey: Self.newKey(), discontinueKey: Self.newKey(), error: errors[product.sku])
        }
        let add = ProductsAdmin.NewProductForm(
            sku: adding?.text("sku") ?? "", name: adding?.text("name") ?? "", description: adding?.text("description") ?? "",
            price: adding?.text("price") ?? "", currency: adding?.text("currency") ?? "EUR", key: Self.newKey())
        let content = ProductsAdmin(products: rows, next: page.next.map { "/admin/products?after=\(segment($0))" }, add: add, addErrors: errors,
                                    currencies: Currency.supported.sorted().map { .init(code: $0, selected: $0 == add.currency) })
        return pages.render("admin-products", title: "Products", content, visit, status: status)
    }

    /// A price typed in a form (`12.50`, `12,50` or `12`) in `currency`; otherwise a problem of `field`.
    static func money(_ text: String, _ currency: String, field: String) throws -> Money {
        let parts = text.replacingOccurrences(of: ",", with: ".").split(separator: ".", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), parts.allSatisfy({ $0.allSatisfy { ("0"..."9").contains($0) } }),
              (1...9).contains(parts[0].count), parts.count == 1 || (1...2).contains(parts[1].count), let major = Int64(parts[0]) else {
            throw FieldProblem(field: field, "a price is written like 12.50")
        }
        let minor = parts.count == 2 ? Int64(parts[1].count == 1 ? "\(parts[1])0" : String(parts[1]))! : 0
        do { return try Money(minorUnits: major * 100 + minor, currency: try Currency(currency)) } catch {
            throw FieldProblem(field: field, error.description)
        }
    }
}
