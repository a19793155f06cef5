import EventStore
import Hummingbird

/// `/health/live` answers while the process serves; `/health/ready` only while its database answers too.
public struct Health: Sendable {
    public let store: EventStore

    public init(store: EventStore) { self.store = store }

    public func addRoutes(to router: Router<some RequestContext>) {
        router.get("/health/live") { _, _ in ["status": "live"] }
        router.get("/health/ready") { _, _ -> Response in
            do {
                try await store.ping()
                return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: #"{"status":"ready"}"#)))
            } catch {
                throw Problem(.serviceUnavailable, rule: "not-ready", title: "Not ready", detail: "the database does not answer",
                              headers: [.retryAfter: "1"])
            }
        }
    }
}
