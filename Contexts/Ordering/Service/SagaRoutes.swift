import Foundation
import Hummingbird
import Ordering
import ServiceKit

/// The operator's view of the fulfilment saga: `GET /admin/sagas[?status=S]`, `GET /admin/sagas/{id}` (with
/// its timeline) and `POST /admin/sagas/{id}/retry` (re-drives a parked instance). `shop-admin sagas` does
/// the same against the database.
struct SagaRoutes: Sendable {
    let sagas: Sagas
    let orchestrator: FulfilmentOrchestrator

    func addRoutes(to router: Router<some RequestContext>) {
        router.get("/admin/sagas") { request, _ -> Response in
            var status: Fulfilment.Status?
            if let text = request.uri.queryParameters["status"] {
                guard let known = Fulfilment.Status(rawValue: String(text)) else {
                    let names = Fulfilment.Status.allCases.map(\.rawValue).joined(separator: ", ")
                    throw Problem.badRequest("invalid-status", "status is one of \(names)")
                }
                status = known
            }
            let instances = try await sagas.list(status: status, limit: 200)
            return try CommandReply.json(.ok, ["sagas": instances.map { SagaView($0) }]).response(replayed: false)
        }
        router.get("/admin/sagas/{id}") { _, context -> Response in
            let id = try context.parameters.text("id")
            guard let instance = try await sagas.instance(id) else { throw Problem.notFound("there is no saga '\(id.prefix(80))'") }
            return try CommandReply.json(.ok, SagaView(instance, timeline: try await sagas.timeline(id))).response(replayed: false)
        }
        router.post("/admin/sagas/{id}/retry") { _, context -> Response in
            let id = try context.parameters.text("id")
            let instance: Sagas.Instance
            do {
                instance = try await sagas.retry(id)
            } catch let error as Sagas.SagaError {
                switch error {
                case .unknown: throw Problem.notFound(error.description)
                case .notParked: throw Problem.ruleBroken("saga-not-parked", error.description)
                case .unreadable: throw error  // the row, not the request, is wrong
                }
            }
            orchestrator.poke()
            return try CommandReply.json(.ok, SagaView(instance)).response(replayed: false)
        }
    }
}

/// An instance as operators see it: the card masked.
public struct SagaView: Codable, Sendable, Equatable {
    public let id: String, status: String, step: String?, reason: String?
    public let done: [String], unsure: [String], attempts: Int
    public let card: String
    public let dueAt: Date?, startedAt: Date, updatedAt: Date
    public let timeline: [Sagas.Entry]?

    public init(_ instance: Sagas.Instance, timeline: [Sagas.Entry]? = nil) {
        let state = instance.state
        id = instance.id
        status = instance.status.rawValue
        step = instance.step?.rawValue
        reason = state.reason
        done = Fulfilment.Step.allCases.filter { state.done.contains($0) }.map(\.rawValue)
        unsure = Fulfilment.Step.allCases.filter { state.unsure.contains($0) }.map(\.rawValue)
        attempts = state.failures
        card = "•••• " + state.card.suffix(4)
        dueAt = instance.dueAt
        startedAt = instance.startedAt
        updatedAt = instance.updatedAt
        self.timeline = timeline
    }
}
