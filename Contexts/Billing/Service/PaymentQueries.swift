import Hummingbird
import PaymentLedger
import Projections
import ServiceKit
import ServiceRuntime

/// Billing's queries, read from its SQLite view only: payments per order, and the ledger.
struct PaymentQueries: Sendable {
    let ledger: Projector

    struct Payments: Encodable { let payments: [PaymentLedger.Payment], next: String?, view: ViewState }
    struct Ledger: Encodable { let ledger: [PaymentLedger.Entry], view: ViewState }

    func addRoutes(to router: Router<some RequestContext>) {
        router.get("/payments") { request, _ -> Response in
            let limit = request.uri.queryParameters.get("limit").flatMap { Int($0) } ?? 20
            guard (1...100).contains(limit) else { throw Problem.badRequest("malformed-limit", "'limit' must be between 1 and 100") }
            let after = try request.query("after")
            let view = try await ledger.state(for: request)
            let payments = try await ledger.read { try PaymentLedger.payments($0, after: after, limit: limit) }
            return try CommandReply.json(.ok, Payments(payments: payments, next: payments.count == limit ? payments.last?.order : nil, view: view))
                .response(replayed: false)
        }
        router.get("/ledger") { request, _ -> Response in
            let view = try await ledger.state(for: request)
            let entries = try await ledger.read { try PaymentLedger.ledger($0) }
            return try CommandReply.json(.ok, Ledger(ledger: entries, view: view)).response(replayed: false)
        }
    }
}
