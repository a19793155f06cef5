import CatalogService
import Contracts
import EventStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Identity
import OrderingService
import SharedKernel
import TestSupport
import Testing

func consumer(_ store: EventStore, catalog port: Int) async throws -> CatalogFeedConsumer {
    CatalogFeedConsumer(copy: CatalogCopy(store: store), catalogURL: "http://127.0.0.1:\(port)",
                        identity: try await ServiceIdentity(name: "ordering", secret: TestSecrets.service), logger: TestDatabase.logger)
}

/// Polls until the consumer has applied `expected` events in all (or 20 seconds have passed), and returns how many it
/// applied. The feed holds back events behind any transaction still open in the cluster (another test's, run in
/// parallel), so one poll may give only part of them.
func poll(_ consumer: CatalogFeedConsumer, until expected: Int) async throws -> Int {
    let deadline = ContinuousClock.now + .seconds(20)
    var applied = try await consumer.poll()
    while applied < expected, ContinuousClock.now < deadline {
        try await Task.sleep(for: .milliseconds(20))  // for a transaction in another test's database to end
        applied += try await consumer.poll()
    }
    return applied
}

@Suite("Ordering service")
struct OrderingServiceTests {
    @Test func theCatalogCopyFollowsTheFeedAndResumesFromItsCheckpoint() async throws {
        let catalogDatabase = try await TestDatabase.create()
        let orderingDatabase = try await TestDatabase.create(folders: ["eventstore", "ordering"])
        let catalog = try await CatalogService.application(
            .init(port: 0, database: catalogDatabase, viewsDirectory: scratchViews(), serviceSecret: TestSecrets.service).forTests, logger: TestDatabase.logger)
        try await catalog.test(.live) { catalogService in
            let catalogClient = try await catalogService.calling("catalog")
            let port = try #require(catalogClient.port)
            for (sku, price) in [("MUG-001", 1250), ("TEE-001", 1999)] {
                let added = try await catalogClient.send(.post, "/products", #"{"sku":"\#(sku)","name":"\#(sku) name","price":{"amount":\#(price),"currency":"EUR"}}"#)
                #expect(added.status == .created)
            }
            try await withRunningStore(orderingDatabase) { store in
                let copy = CatalogCopy(store: store)
                let applied = try await poll(try await consumer(store, catalog: port), until: 2)
                let mug = try await copy.product("MUG-001")
                let expected = CatalogCopy.Product(sku: "MUG-001", name: "MUG-001 name", price: try Money(minorUnits: 1250, currency: .eur), discontinued: false)
                #expect(applied == 2 && mug == expected)
            }
            // Changes while the consumer is stopped are picked up after a restart, and only those.
            try await catalogClient.send(.put, "/products/MUG-001/price", #"{"price":{"amount":1500,"currency":"EUR"}}"#)
            try await catalogClient.send(.post, "/products/TEE-001/discontinue")
            try await catalogClient.send(.put, "/products/TEE-001/name", #"{"name":"ignored: discontinued"}"#)
            try await withRunningStore(orderingDatabase) { store in
                let copy = CatalogCopy(store: store)
                let restarted = try await consumer(store, catalog: port)
                let first = try await poll(restarted, until: 2), second = try await restarted.poll()
                #expect(first == 2 && second == 0)
                let mug = try await copy.product("MUG-001"), tee = try await copy.product("TEE-001")
                #expect(mug?.price == (try Money(minorUnits: 1500, currency: .eur)))
                #expect(tee?.discontinued == true && tee?.name == "TEE-001 name")
            }
        }
    }

    @Test func aRedeliveredOrOlderEventIsAppliedOnce() async throws {
        let url = try await TestDatabase.create(folders: ["eventstore", "ordering"])
        try await withRunningStore(url) { store in
            let copy = CatalogCopy(store: store)
            let eur = { (cents: Int64) in try Money(minorUnits: cents, currency: .eur) }
            let listed = CatalogFeed.Entry(position: "100-1", id: "a", event: .productListed(sku: "MUG-001", name: "Mug", price: try eur(1250)))
            let repriced = CatalogFeed.Entry(position: "101-2", id: "b", event: .productRepriced(sku: "MUG-001", price: try eur(1500)))
            try await copy.apply(.init(events: [listed, repriced], next: "101-2"))
            // Delivered again, and the listing alone (older than the price change): nothing goes back.
            try await copy.apply(.init(events: [listed, repriced], next: "101-2"))
            try await copy.apply(.init(events: [listed], next: "100-1"))
            let mug = try await copy.product("MUG-001")
            #expect(mug?.price == (try eur(1500)) && mug?.name == "Mug")
        }
    }

    @Test func checkoutPricesFromTheCopyWhileCatalogIsDown() async throws {
        let catalogDatabase = try await TestDatabase.create()
        let orderingDatabase = try await TestDatabase.create(folders: ["eventstore", "ordering"])
        let catalog = try await CatalogService.application(
            .init(port: 0, database: catalogDatabase, viewsDirectory: scratchViews(), serviceSecret: TestSecrets.service).forTests, logger: TestDatabase.logger)
        let catalogPort = try await catalog.test(.live) { catalogService in
            let catalogClient = try await catalogService.calling("catalog")
            try await catalogClient.send(.post, "/products", #"{"sku":"MUG-001","name":"Mug","price":{"amount":1250,"currency":"EUR"}}"#)
            try await catalogClient.send(.post, "/products", #"{"sku":"OLD-001","name":"Old","price":{"amount":500,"currency":"EUR"}}"#)
            try await catalogClient.send(.post, "/products/OLD-001/discontinue")
            let port = try #require(catalogClient.port)
            try await withRunningStore(orderingDatabase) { store in _ = try await poll(try await consumer(store, catalog: port), until: 3) }
            return port
        }
        // Catalog has stopped: its port answers nothing now.
        let ordering = try await OrderingService.application(
            .init(port: 0, database: orderingDatabase, catalogURL: "http://127.0.0.1:\(catalogPort)",
                  billingURL: "http://127.0.0.1:\(catalogPort)", feedPollInterval: .seconds(60), viewsDirectory: scratchViews(),
                  // The saga finds Catalog down; it waits a minute before its next attempt.
                  saga: .init(retry: .init(attempts: 6, firstDelay: .seconds(120))), serviceSecret: TestSecrets.service).forTests,
            logger: TestDatabase.logger)
        try await ordering.test(.live) { service in
            let client = try await service.calling("ordering")
            let kim = "/carts/kim"
            #expect(try await client.send(.post, "\(kim)/items", #"{"sku":"MUG-001","quantity":2}"#).status == .ok)
            #expect(try await client.send(.post, "\(kim)/items", #"{"sku":"MUG-001","quantity":1}"#).status == .ok)
            let unknown = try await client.send(.post, "\(kim)/items", #"{"sku":"NOPE-1","quantity":1}"#)
            #expect(unknown.status == .unprocessableContent && unknown.rule == "unknown-product")
            let discontinued = try await client.send(.post, "\(kim)/items", #"{"sku":"OLD-001","quantity":1}"#)
            #expect(discontinued.status == .unprocessableContent && discontinued.rule == "product-discontinued")
            // Ids no stream could have are the domain's refusal, never a 500.
            let long = String(repeating: "k", count: 250)
            let longCustomer = try await client.send(.post, "/carts/\(long)/items", #"{"sku":"MUG-001","quantity":1}"#)
            #expect(longCustomer.status == .unprocessableContent && longCustomer.rule == "invalid-reference")
            let longOrder = try await client.send(.post, "\(kim)/checkout", #"{"order":"\#(long)","card":"4242424242424242"}"#)
            #expect(longOrder.status == .unprocessableContent && longOrder.rule == "invalid-reference")
            let tooMany = try await client.send(.post, "\(kim)/items", #"{"sku":"MUG-001","quantity":97}"#)
            #expect(tooMany.status == .unprocessableContent && tooMany.rule == "invalid-quantity")

            let cart = try await client.object(kim)
            #expect((cart["items"] as? [[String: Any]])?.first?["quantity"] as? Int == 3)

            let checkout = try await client.send(.post, "\(kim)/checkout", #"{"order":"order-1","card":"4242 4242 4242 4242"}"#, key: "checkout-1")
            #expect(checkout.status == .created, "\(String(buffer: checkout.body))")
            #expect(checkout.headers[.location] == "/orders/order-1")
            let order = try await client.object("/orders/order-1")
            // Its fulfilment started with it: it waits for stock (Catalog is down, so the saga retries).
            #expect(order["status"] as? String == "awaiting-stock" && order["customer"] as? String == "kim")
            #expect((order["fulfilment"] as? [String: Any])?["step"] as? String == "reserve-stock")
            let noCard = try await client.send(.post, "\(kim)/checkout", #"{"order":"order-3","card":"12"}"#)
            #expect(noCard.status == .unprocessableContent && noCard.rule == "invalid-card")
            let noBody = try await client.send(.post, "\(kim)/checkout")
            #expect(noBody.status == .badRequest && noBody.rule == "missing-body")
            let total = order["total"] as? [String: Any]
            #expect(total?["amount"] as? Int == 3750 && total?["currency"] as? String == "EUR")
            // A retried checkout places nothing more; the cart is empty now.
            let again = try await client.send(.post, "\(kim)/checkout", #"{"order":"order-1","card":"4242 4242 4242 4242"}"#, key: "checkout-1")
            #expect(again.status == .created && again.body == checkout.body)
            #expect((try await client.object(kim)["items"] as? [Any])?.isEmpty == true)
            let notJSON = try await client.send(.post, "\(kim)/checkout", "order=order-2", contentType: "text/plain")
            #expect(notJSON.status == .unsupportedMediaType)
            let badOrder = try await client.send(.post, "\(kim)/checkout", #"{"order":42,"card":"4242424242424242"}"#)
            #expect(badOrder.status == .badRequest && badOrder.rule == "malformed-json")
            let empty = try await client.send(.post, "\(kim)/checkout", #"{"order":"order-2","card":"4242424242424242"}"#)
            #expect(empty.status == .unprocessableContent && empty.rule == "empty-cart")

            // Cancelling before confirmation needs no refund; shipping a cancelled order is refused.
            let cancelled = try await client.send(.post, "/orders/order-1/cancel", #"{"reason":"changed my mind"}"#)
            #expect(cancelled.status == .ok)
            let cancelledOrder = try await client.object("/orders/order-1")
            #expect(cancelledOrder["status"] as? String == "cancelled" && cancelledOrder["refundRequired"] as? Bool == false)
            let ship = try await client.send(.post, "/orders/order-1/ship")
            #expect(ship.status == .unprocessableContent && ship.rule == "order-status")
            let missing = try await client.execute(uri: "/orders/nope", method: .get)
            #expect(missing.status == .notFound)

            // The customer's order history and the order's timeline come from Ordering's view.
            let history = try await client.object("/customers/kim/orders?minPosition=\(try #require(cancelled.object["position"] as? String))")
            #expect((history["orders"] as? [[String: Any]])?.map { $0["status"] as? String } == ["cancelled"])
            let detail = try await client.object("/orders/order-1/detail")
            let timeline = (detail["order"] as? [String: Any])?["timeline"] as? [[String: Any]]
            #expect(timeline?.map { $0["status"] as? String } == ["placed", "awaiting-stock", "cancelled"])
            #expect(timeline?.last?["reason"] as? String == "changed my mind")
            let sales = try await client.execute(uri: "/sales?from=2026-01-01&to=yesterday", method: .get)
            #expect(sales.status == .badRequest && sales.rule == "malformed-to")

            // What happened to the order is published on Ordering's feed, in order.
            let feed = try await client.execute(uri: "/feed/orders", method: .get)
            let page = try JSONDecoder().decode(OrderingFeed.Page.self, from: Data(buffer: feed.body))
            #expect(page.events.map(\.event.type) == ["ordering.v1.order-placed", "ordering.v1.order-cancelled"])
            #expect(page.events.first?.event.total == (try Money(minorUnits: 3750, currency: .eur)))
            #expect(page.events.last?.event.reason == "changed my mind" && page.events.last?.event.refundRequired == false)
        }
    }
}
