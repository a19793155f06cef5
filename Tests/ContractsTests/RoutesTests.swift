import Contracts
import Foundation
import Testing

@Suite("Routes of the published contracts")
struct RoutesTests {
    /// Whatever an id holds, it stays one path segment, and a query value stays one value.
    @Test(arguments: ["a/b", "a?b", "a#b", "a&b=c", "a+b", "a b", "a%2Fb", "ä", ".."])
    func idsAndQueryValuesAreEncodedWhole(_ text: String) {
        let path = OrderingRoutes.order(text)
        #expect(path.split(separator: "/").count == 2, "\(path)")
        let encoded = path.dropFirst("/orders/".count)
        #expect(!encoded.contains { "/?#&=+ ".contains($0) }, "\(path)")
        #expect(encoded.removingPercentEncoding == text)

        let search = CatalogRoutes.products(search: text, limit: "5")
        let query = search.split(separator: "?", maxSplits: 1)
        #expect(query.count == 2 && query[0] == "/products/search", "\(search)")
        let values = query[1].split(separator: "&")
        #expect(values.count == 2, "\(search)")
        #expect(values.first?.dropFirst(2).removingPercentEncoding == text)
    }

    @Test func aQueryHasOnlyTheValuesGiven() {
        #expect(CatalogRoutes.products() == "/products")
        #expect(CatalogRoutes.products(limit: "50") == "/products?limit=50")
        #expect(CatalogRoutes.products(search: "mug", limit: "50", after: "MUG-001") == "/products/search?q=mug&limit=50&after=MUG-001")
        #expect(OrderingRoutes.sagas() == "/admin/sagas")
        #expect(OrderingRoutes.sagas(status: "parked") == "/admin/sagas?status=parked")
        #expect(OrderingRoutes.feed(after: "12-34", limit: 1000, wait: 25) == "/feed/orders?after=12-34&limit=1000&wait=25")
    }
}
