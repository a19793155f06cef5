import Foundation
import HTTPTypes
import HummingbirdTesting
import ShopSupport
import TestSupport
import Testing

@Suite("Ordering's published feed, followed")
struct OrderFeedTests {
    /// `after=head` starts at what is committed from now on; `wait` holds an empty page until an order event comes, and
    /// answers it then, not at the end of the wait.
    @Test func aLongPollFromTheHeadAnswersTheNextOrderEventWhenItComes() async throws {
        try await withShop { shop in
            try await shop.product("MUG-001", stock: 3)
            let first = try await shop.order("kim", "MUG-001")
            _ = try await shop.outcome(first)
            let head = try await shop.ordering.object("/feed/orders?after=head")
            #expect((head["events"] as? [Any])?.isEmpty == true)
            let next = try #require(head["next"] as? String)
            let empty = try await shop.ordering.object("/feed/orders?after=\(next)&wait=1")
            #expect((empty["events"] as? [Any])?.isEmpty == true && empty["next"] as? String == next)

            let started = ContinuousClock.now
            let port = try #require(shop.ordering.port)
            let page = Task { try await getAlone(port: port, audience: "ordering", "/feed/orders?after=\(next)&wait=20").body }
            let second = try await shop.order("ann", "MUG-001")
            let events = (try JSONSerialization.jsonObject(with: try await page.value) as? [String: Any])?["events"] as? [[String: Any]] ?? []
            #expect(ContinuousClock.now - started < .seconds(15), "the poll ran to its end")
            let placed = try #require(events.first?["event"] as? [String: Any])
            #expect(placed["type"] as? String == "ordering.v1.order-placed" && placed["order"] as? String == second)
            for bad in ["wait=31", "wait=-1", "wait=soon", "after=tail"] {
                #expect(try await shop.ordering.send(.get, "/feed/orders?\(bad)").status == .badRequest, "\(bad)")
            }
        }
    }
}
