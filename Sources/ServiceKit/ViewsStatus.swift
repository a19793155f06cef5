import Foundation
import Hummingbird
import Projections

/// `GET /admin/views`: each of the service's views with its version, serving generation, position, lag and rate.
public struct ViewsStatus: Sendable {
    let projectors: [Projector]

    public init(_ projectors: [Projector]) { self.projectors = projectors }

    struct View: Encodable {
        let name: String, version: Int, generation: Int, position: String, eventsHandled: Int, eventsPerSecond: Double
        let lag: Projector.Lag, lastBatchAt: String?
    }

    public func addRoutes(to router: Router<some RequestContext>) {
        router.get("/admin/views") { _, _ -> Response in
            var views: [View] = []
            for projector in projectors {
                let status = projector.status
                views.append(View(
                    name: projector.projection.name, version: projector.projection.version, generation: projector.generation,
                    position: status.position.description,
                    eventsHandled: status.eventsHandled, eventsPerSecond: (status.rate * 10).rounded() / 10,
                    lag: try await projector.lag(), lastBatchAt: status.lastBatchAt?.formatted(.iso8601)))
            }
            return try CommandReply.json(.ok, ["views": views]).response(replayed: false)
        }
    }
}
