import EventStore
import Hummingbird
import Projections
import ServiceKit

/// `/health/live` answers while the process serves (and costs nothing); `/health/ready` only while its database
/// answers, its views are no further behind the event store than `maximumLag` (a service whose views are
/// catching up would answer its queries with old data), and its other loops make progress (`checks`: each says
/// what is wrong, or nil).
public struct Health: Sendable {
    public let store: EventStore
    let projectors: [Projector]
    let maximumLag: Double
    let checks: [@Sendable () async -> Problem?]

    public init(store: EventStore, projectors: [Projector] = [], maximumLag: Double = 30, checks: [@Sendable () async -> Problem?] = []) {
        self.store = store
        self.projectors = projectors
        self.maximumLag = maximumLag
        self.checks = checks
    }

    public func addRoutes(to router: Router<some RequestContext>) {
        router.get("/health/live") { _, _ in ["status": "live"] }
        router.get("/health/ready") { _, _ -> Response in
            do {
                try await store.ping()
            } catch {
                throw Problem(.serviceUnavailable, rule: "not-ready", title: "Not ready", detail: "the database does not answer",
                              headers: [.retryAfter: "1"])
            }
            for projector in projectors {
                guard let lag = try? await projector.lag() else { continue }
                if lag.seconds > maximumLag {
                    let behind = "the view \(projector.projection.name) is \(Int(lag.seconds)) s (\(lag.events) events) behind"
                    // Held back by a transaction of its database (the view waits, correctly), or not following.
                    if let holder = try? await store.holdingBack() {
                        throw Problem(.serviceUnavailable, rule: "views-held-back", title: "Not ready: the views are held back",
                                      detail: "\(behind): its database has \(holder), and what that may still commit comes first",
                                      headers: [.retryAfter: "1"])
                    }
                    throw Problem(.serviceUnavailable, rule: "not-ready", title: "Not ready", detail: behind, headers: [.retryAfter: "1"])
                }
            }
            for check in checks {
                if let problem = await check() { throw problem }
            }
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: #"{"status":"ready"}"#)))
        }
    }
}
