import Billing
import Hummingbird
import ServiceKit

/// The payment provider simulator's own controls, served only when Billing runs with the simulator:
/// `GET /simulator/ledger` (what the provider did, per order: authorisations, captures, voids, refunds) and
/// `PUT /simulator/outage` with `{"calls": ["capture"]}` (those calls fail as an unavailable provider's do
/// until the outage is set again; `[]` ends it).
struct SimulatorRoutes: Sendable {
    let simulator: PaymentProviderSimulator

    struct Outage: Codable { let calls: [PaymentProviderSimulator.Call] }
    struct LedgerView: Encodable { let authorisations, captures, voids, refunds: [String: Int] }

    func addRoutes(to router: Router<some RequestContext>) {
        router.get("/simulator/ledger") { _, _ -> Response in
            let ledger = simulator.ledger
            return try CommandReply.json(.ok, LedgerView(authorisations: ledger.authorisations, captures: ledger.captures,
                                                         voids: ledger.voids, refunds: ledger.refunds)).response(replayed: false)
        }
        router.put("/simulator/outage") { request, _ -> Response in
            let outage = try JSONBody.decode(Outage.self, from: try await JSONBody.bytes(of: request))
            simulator.setOutage(Set(outage.calls))
            return try CommandReply.json(.ok, outage).response(replayed: false)
        }
    }
}
