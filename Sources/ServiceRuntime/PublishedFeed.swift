import EventStore
import Foundation
import Hummingbird
import ServiceKit

/// Serves a context's published feed, `GET <path>?after=POSITION&limit=N&wait=S`: its events of `types`, in commit
/// order, each translated into the published contract by `publish`. A consumer keeps `next` as its
/// checkpoint; delivery is at least once, so consumers apply events idempotently. `after=head` starts at the
/// events committed from now on; `wait` (0 to 30 seconds) holds an empty page until an event comes, so that one
/// request at a time follows the feed as it grows.
public struct PublishedFeed<Event: Encodable & Sendable>: Sendable {
    let store: EventStore
    let path: String
    let types: [String]
    let publish: @Sendable (RecordedEvent) throws -> Event

    public init(store: EventStore, path: String, types: some Sequence<String>, publish: @escaping @Sendable (RecordedEvent) throws -> Event) {
        self.store = store
        self.path = path
        self.types = Array(types)
        self.publish = publish
    }

    struct Entry: Encodable { let position: String, id: String, event: Event }
    struct Page: Encodable { let events: [Entry], next: String }

    public func addRoutes(to router: Router<some RequestContext>) {
        router.get(RouterPath(path)) { request, _ -> Response in
            let after: Position
            if let text = request.uri.queryParameters.get("after") {
                if text == "head" {
                    after = try await store.headPosition()
                } else {
                    guard let position = Position(text) else {
                        throw Problem.badRequest("malformed-position", "'after' must be 'head' or a position such as 7391-1204, as a page's 'next' gives")
                    }
                    after = position
                }
            } else {
                after = .start
            }
            let limit = request.uri.queryParameters.get("limit").flatMap(Int.init) ?? 100
            guard (1...1000).contains(limit) else { throw Problem.badRequest("malformed-limit", "'limit' must be between 1 and 1000") }
            let wait = request.uri.queryParameters.get("wait").map { Int($0) } ?? 0
            guard let wait, (0...30).contains(wait) else { throw Problem.badRequest("malformed-wait", "'wait' must be 0 to 30 seconds") }
            let deadline = ContinuousClock.now + .seconds(wait)
            var recorded: [RecordedEvent]
            while true {
                let seen = store.eventsAvailable.generation
                recorded = try await store.readAll(after: after, limit: limit, types: types)
                let left = deadline - ContinuousClock.now
                guard recorded.isEmpty, left > .zero else { break }
                await store.eventsAvailable.wait(past: seen, timeout: left)
            }
            let page = Page(
                events: try recorded.map { Entry(position: $0.position.description, id: $0.id.uuidString.lowercased(), event: try publish($0)) },
                next: (recorded.last?.position ?? after).description)
            return try CommandReply.json(.ok, page).response(replayed: false)
        }
    }
}
