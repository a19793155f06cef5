import Foundation
import Hummingbird
import Projections
import ServiceKit
import Synchronization

/// `GET /admin/views`: each of the service's views with its version, serving generation, position, lag and rate;
/// `POST /admin/views/{name}/rebuild`: one view rebuilt from the first event while the current generation serves,
/// then swapped in (as `shop-admin projections rebuild` does from outside), one rebuild of a view at a time.
public struct ViewsStatus: Sendable {
    let projectors: [Projector]
    /// The views being rebuilt now.
    let rebuilding = RebuildsInProgress()

    public init(_ projectors: [Projector]) { self.projectors = projectors }

    final class RebuildsInProgress: Sendable {
        private let names = Mutex<Set<String>>([])
        func begin(_ name: String) -> Bool { names.withLock { $0.insert(name).inserted } }
        func end(_ name: String) { _ = names.withLock { $0.remove(name) } }
        func contains(_ name: String) -> Bool { names.withLock { $0.contains(name) } }
    }

    struct View: Encodable {
        let name: String, version: Int, generation: Int, position: String, eventsHandled: Int, eventsPerSecond: Double
        let lag: Projector.Lag, lastBatchAt: String?, rebuilding: Bool
    }

    struct Rebuilt: Encodable { let name: String, generation: Int, position: String, events: Int, seconds: Double }

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
                    lag: try await projector.lag(), lastBatchAt: status.lastBatchAt?.formatted(.iso8601),
                    rebuilding: rebuilding.contains(projector.projection.name)))
            }
            return try CommandReply.json(.ok, ["views": views]).response(replayed: false)
        }
        router.post("/admin/views/{name}/rebuild") { _, context -> Response in
            let name = try context.parameters.text("name")
            guard let projector = projectors.first(where: { $0.projection.name == name }) else {
                throw Problem.notFound("this service has no view '\(name.prefix(80))'")
            }
            guard rebuilding.begin(name) else {
                throw Problem(.conflict, rule: "rebuild-in-progress", title: "Already rebuilding", detail: "\(name) is being rebuilt now")
            }
            defer { rebuilding.end(name) }
            let result = try await projector.rebuild()
            return try CommandReply.json(.ok, Rebuilt(
                name: name, generation: result.generation, position: result.position.description, events: result.events,
                seconds: Double(result.elapsed.components.seconds) + Double(result.elapsed.components.attoseconds) / 1e18)).response(replayed: false)
        }
    }
}
