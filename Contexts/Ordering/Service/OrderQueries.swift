import Foundation
import Hummingbird
import OrderHistory
import Projections
import SalesSummary
import ServiceKit
import ServiceRuntime

/// Ordering's queries, read from its SQLite views only: a customer's orders, an order's detail with its
/// timeline, and the daily sales summary.
struct OrderQueries: Sendable {
    let history: Projector
    let sales: Projector

    struct Orders: Encodable { let orders: [OrderHistory.Summary], next: String?, view: ViewState }
    struct Detail: Encodable { let order: OrderHistory.Detail, view: ViewState }
    struct Sales: Encodable { let sales: [SalesSummary.Row], view: ViewState }

    func addRoutes(to router: Router<some RequestContext>) {
        router.get("/customers/{customer}/orders") { request, context -> Response in
            let customer = try context.parameters.text("customer")
            let limit = try limit(request)
            let before = try request.query("before")
            let view = try await history.state(for: request)
            let orders = try await history.read { try OrderHistory.orders($0, customer: customer, before: before, limit: limit) }
            return try CommandReply.json(.ok, Orders(orders: orders, next: orders.count == limit ? orders.last?.order : nil, view: view))
                .response(replayed: false)
        }
        router.get("/orders/{order}/detail") { request, context -> Response in
            let order = try context.parameters.text("order")
            let view = try await history.state(for: request)
            guard let detail = try await history.read({ try OrderHistory.detail($0, order: order) }) else {
                throw Problem.notFound("there is no order \(order.prefix(64)) in the order history (yet: its view is at \(view.position))")
            }
            return try CommandReply.json(.ok, Detail(order: detail, view: view)).response(replayed: false)
        }
        router.get("/sales") { request, _ -> Response in
            let from = try day(request, "from"), to = try day(request, "to")
            guard from <= to else { throw Problem.badRequest("malformed-range", "'from' must not be after 'to'") }
            let view = try await sales.state(for: request)
            let rows = try await sales.read { try SalesSummary.sales($0, from: from, to: to) }
            return try CommandReply.json(.ok, Sales(sales: rows, view: view)).response(replayed: false)
        }
    }

    private func limit(_ request: Request) throws -> Int {
        guard let text = request.uri.queryParameters.get("limit") else { return 20 }
        guard let limit = Int(text), (1...100).contains(limit) else { throw Problem.badRequest("malformed-limit", "'limit' must be between 1 and 100") }
        return limit
    }

    private func day(_ request: Request, _ name: String) throws -> String {
        guard let text = try request.query(name) else {
            throw Problem.badRequest("missing-\(name)", "'\(name)' is required: a day such as 2026-11-24")
        }
        guard text.count == 10, (try? Date.ISO8601FormatStyle().year().month().day().parse(text)) != nil else {
            throw Problem.badRequest("malformed-\(name)", "'\(name)' must be a day such as 2026-11-24")
        }
        return text
    }
}
