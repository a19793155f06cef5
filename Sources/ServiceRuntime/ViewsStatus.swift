import Foundation
import Hummingbird
import Projections
import ServiceKit

/// `GET /admin/views`: each of the service's views with its version, serving generation, position, lag and rate.
public struct ViewsStatus: Sendable {
    let projectors: [Projector]

    public init(_ projectors: [Projector]) { self.projectors = projectors }

    struct View: Encodable {
        let name: String, version: Int, generation: Int, position: String, eventsHandled: Int, eventsPerSecond: Double
        let lag: Projector.Lag, lastBatchAt: String?
    }

    /// Each view's position, lag and rate as gauges, read at every scrape.
    public func export(to metrics: ServiceMetrics) {
        let projectors = projectors
        metrics.onScrape { metrics in
            for projector in projectors {
                let view = [("view", projector.projection.name)]
                let status = projector.status
                metrics.gauge("projector_events_handled", view).record(status.eventsHandled)
                metrics.gauge("projector_events_per_second", view).record(status.rate)
                metrics.gauge("projector_generation", view).record(projector.generation)
                if let lag = try? await projector.lag() {
                    metrics.gauge("projector_lag_events", view).record(lag.events)
                    metrics.gauge("projector_lag_seconds", view).record(lag.seconds)
                }
            }
        }
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
