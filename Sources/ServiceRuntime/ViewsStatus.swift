import Foundation
import Hummingbird
import Projections
import ServiceKit
import Synchronization

/// `GET /admin/views`: each of the service's views with its version, serving generation, position, lag and rate;
/// `POST /admin/views/{name}/rebuild`: 202 at once, and the view is rebuilt from the first event in the background
/// while the current generation serves, then swapped in (as `shop-admin projections rebuild` does from outside); one
/// rebuild of a view at a time (409 meanwhile), and the views' status says which are being rebuilt and how the last
/// rebuild of each ended. A rebuild cut short (the process stopped) leaves the serving generation as it was.
public struct ViewsStatus: Sendable {
    let projectors: [Projector]
    /// The views being rebuilt now.
    let rebuilding = RebuildsInProgress()

    public init(_ projectors: [Projector]) { self.projectors = projectors }

    final class RebuildsInProgress: Sendable {
        private let state = Mutex<(running: Set<String>, outcomes: [String: String])>(([], [:]))
        func begin(_ name: String) -> Bool { state.withLock { $0.running.insert(name).inserted } }
        func end(_ name: String, _ outcome: String) {
            state.withLock { state in
                state.running.remove(name)
                state.outcomes[name] = outcome
            }
        }
        func contains(_ name: String) -> Bool { state.withLock { $0.running.contains(name) } }
        func outcome(_ name: String) -> String? { state.withLock { $0.outcomes[name] } }
    }

    struct View: Encodable {
        let name: String, version: Int, generation: Int, position: String, eventsHandled: Int, eventsPerSecond: Double
        let lag: Projector.Lag, lastBatchAt: String?, rebuilding: Bool
        /// How the last rebuild through this route ended, if there was one since the process started.
        let lastRebuild: String?
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
                    lag: try await projector.lag(), lastBatchAt: status.lastBatchAt?.formatted(.iso8601),
                    rebuilding: rebuilding.contains(projector.projection.name), lastRebuild: rebuilding.outcome(projector.projection.name)))
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
            // However long the view, the request is answered at once: the rebuild goes on without it.
            let rebuilding = rebuilding, logger = context.logger
            Task {
                do {
                    let result = try await projector.rebuild()
                    let seconds = Double(result.elapsed.components.seconds) + Double(result.elapsed.components.attoseconds) / 1e18
                    rebuilding.end(name, "generation \(result.generation): \(result.events) events in \(String(format: "%.1f", seconds)) s, swapped in")
                } catch {
                    logger.error("a view's rebuild failed", metadata: ["view": "\(name)", "error": "\(error)"])
                    rebuilding.end(name, "failed: \(error)")
                }
            }
            return try CommandReply.json(.accepted, ["name": name, "status": "rebuilding"], location: "/admin/views").response(replayed: false)
        }
    }
}
