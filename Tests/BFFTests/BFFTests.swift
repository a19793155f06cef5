import AsyncHTTPClient
import BFF
import Foundation
import Gateway
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Identity
import OrderingService
import ServiceRuntime
import ShopSupport
import TestSupport
import Testing

let secret = TestSecrets.token

func token(_ subject: String, _ role: Claims.Role = .customer, expiresIn seconds: Double = 600) async -> String {
    try! await TokenSigner(secret: secret).issue(Claims(subject: subject, role: role, issuedAt: Date(), expiresAt: Date().addingTimeInterval(seconds)))
}

/// The three services and the BFF in front of them, all live.
func withBFF(rate: Double = 1000, burst: Int = 1000, developmentLogin: Bool = true, saga: FulfilmentOrchestrator.Configuration = .quick,
             _ body: @escaping @Sendable (Shop, any TestClientProtocol) async throws -> Void) async throws {
    try await withShop(saga: saga) { shop in
        func url(_ client: any TestClientProtocol) throws -> [String] { ["http://127.0.0.1:\(try #require(client.port))"] }
        let app = try await BFFService.application(
            .init(port: 0, tokenSecret: secret, serviceSecret: TestSecrets.service, catalog: try url(shop.catalog), ordering: try url(shop.ordering), billing: try url(shop.billing),
                  requestsPerSecond: rate, burst: burst, developmentLogin: developmentLogin).forTests,
            logger: TestDatabase.logger)
        try await app.test(.live) { bff in try await body(shop, bff) }
    }
}

extension TestClientProtocol {
    /// A request as the `shop` client sends it: a bearer token, and for a command a JSON body and a fresh key.
    @discardableResult
    func call(_ method: HTTPRequest.Method, _ uri: String, _ json: String? = nil, token: String?, key: String? = UUID().uuidString,
              authorization: String? = nil) async throws -> TestResponse {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let token { headers[.authorization] = "Bearer \(token)" }
        if let authorization { headers[.authorization] = authorization }
        if method != .get, let key { headers[HTTPField.Name("Idempotency-Key")!] = key }
        return try await execute(uri: uri, method: method, headers: headers, body: json.map { ByteBuffer(string: $0) })
    }
}

@Suite("The BFF: authentication, rate limits, the CLI API")
struct BFFTests {
    @Test func everyRouteButThePublicOnesNeedsAValidTokenOfTheRightRole() async throws {
        try await withBFF { shop, bff in
            try await shop.product("MUG-001", stock: 5)
            #expect(try await bff.call(.get, "/cli/v1/products", token: nil).status == .ok)
            #expect(try await bff.call(.get, "/health/live", token: nil).status == .ok)

            let none = try await bff.call(.get, "/cli/v1/cart", token: nil)
            #expect(none.status == .unauthorized && none.rule == "unauthenticated" && none.headers[.wwwAuthenticate] != nil)
            #expect(none.headers[.contentType] == "application/problem+json")
            let expired = try await bff.call(.get, "/cli/v1/cart", token: token("kim", expiresIn: -5))
            #expect(expired.status == .unauthorized && (expired.object["detail"] as? String)?.contains("expired") == true)
            let forged = try await TokenSigner(secret: Data(repeating: 1, count: 32))
                .issue(Claims(subject: "kim", role: .customer, issuedAt: Date(), expiresAt: Date().addingTimeInterval(60)))
            let wrongKey = try await bff.call(.get, "/cli/v1/cart", token: forged)
            #expect(wrongKey.status == .unauthorized && (wrongKey.object["detail"] as? String)?.contains("signature") == true)
            let basic = try await bff.call(.get, "/cli/v1/cart", token: nil, authorization: "Basic a2ltOnB3")
            #expect(basic.status == .unauthorized)
            let admin = try await bff.call(.get, "/cli/v1/cart", token: token("ops", .admin))
            #expect(admin.status == .forbidden && admin.rule == "customer-only")
            #expect(try await bff.call(.get, "/cli/v1/cart", token: token("kim")).status == .ok)
        }
    }

    @Test func aCustomerCheckingOutThroughTheCLIGetsTheOutcomeAndNobodyElseSeesTheOrder() async throws {
        try await withBFF { shop, bff in
            try await shop.product("MUG-001", price: 1250, stock: 5)
            let kim = await token("kim"), ann = await token("ann")
            try await within(.seconds(20), "Ordering's copy of the catalog") {
                while try await bff.call(.post, "/cli/v1/cart/items", #"{"sku":"MUG-001","quantity":2}"#, token: kim).status != .ok {
                    try await Task.sleep(for: .milliseconds(20))
                }
            }
            let cart = try await bff.call(.get, "/cli/v1/cart", token: kim).object
            #expect((cart["total"] as? [String: Any])?["amount"] as? Int == 2500)

            let checkout = try await bff.call(.post, "/cli/v1/checkout", #"{"card":"4242 4242 4242 4242"}"#, token: kim, key: "kim-checkout-1")
            #expect(checkout.status == .ok, "\(String(buffer: checkout.body))")
            let outcome = checkout.object
            #expect(outcome["status"] as? String == "confirmed")
            let order = try #require(outcome["order"] as? String)
            // A retried checkout (same key) names the same order and places nothing more.
            let again = try await bff.call(.post, "/cli/v1/checkout", #"{"card":"4242 4242 4242 4242"}"#, token: kim, key: "kim-checkout-1")
            #expect(again.object["order"] as? String == order)

            #expect(try await bff.call(.get, "/cli/v1/orders/\(order)", token: kim).object["status"] as? String == "confirmed")
            let probe = try await bff.call(.get, "/cli/v1/orders/\(order)", token: ann)
            #expect(probe.status == .notFound && probe.rule == "not-found")
            let cancelOther = try await bff.call(.post, "/cli/v1/orders/\(order)/cancel", #"{"reason":"mine now"}"#, token: ann)
            #expect(cancelOther.status == .notFound)
            #expect(try await bff.call(.get, "/cli/v1/orders/\(order)", token: kim).object["status"] as? String == "confirmed")
            // The list comes from Ordering's view, which catches up.
            try await within(.seconds(10), "the order in kim's list") {
                while (try await bff.call(.get, "/cli/v1/orders", token: kim).object["orders"] as? [[String: Any]])?
                    .contains(where: { $0["order"] as? String == order }) != true {
                    try await Task.sleep(for: .milliseconds(20))
                }
            }

            // A declined card: the outcome says so, with the reason.
            try await bff.call(.post, "/cli/v1/cart/items", #"{"sku":"MUG-001","quantity":1}"#, token: ann)
            let declined = try await bff.call(.post, "/cli/v1/checkout", #"{"card":"4000000000000002"}"#, token: ann).object
            #expect(declined["status"] as? String == "rejected" && declined["reason"] as? String == "payment declined: card declined")
            // Bad input is the service's precise problem, passed on.
            let badCard = try await bff.call(.post, "/cli/v1/checkout", #"{"card":"12"}"#, token: kim)
            #expect(badCard.status == .unprocessableContent && badCard.rule == "invalid-card", "\(badCard.status) \(String(buffer: badCard.body))")
            let noKey = try await bff.call(.post, "/cli/v1/checkout", #"{"card":"4242424242424242"}"#, token: kim, key: nil)
            #expect(noKey.status == .badRequest && noKey.rule == "missing-idempotency-key")
        }
    }

    /// A customer id is encoded into the services' paths in one place (the BFF) and decoded in one place (each
    /// service's path parameters). Ordering did not decode it: `Zoë Smith` got a 404 for an order she had paid for, and
    /// somebody signed in as the literal text `Zo%C3%AB%20Smith` could read and cancel it.
    @Test(.timeLimit(.minutes(3)))
    func customersOfAnyNameReachTheirOwnOrdersAndNobodyElses() async throws {
        try await withBFF { shop, bff in
            try await shop.product("MUG-001", stock: 50)
            var orders: [String: String] = [:]
            for name in ["Zoë Smith", "a+b", "50% off", "x/y", "Zo%C3%AB%20Smith", "Łódź"] {
                let customer = await token(name)
                try await within(.seconds(20), "Ordering's copy of the catalog") {
                    while try await bff.call(.post, "/cli/v1/cart/items", #"{"sku":"MUG-001","quantity":1}"#, token: customer).status != .ok {
                        try await Task.sleep(for: .milliseconds(20))
                    }
                }
                let checkout = try await bff.call(.post, "/cli/v1/checkout", #"{"card":"4242424242424242"}"#, token: customer)
                #expect(checkout.status == .ok && checkout.object["status"] as? String == "confirmed", "\(name): \(String(buffer: checkout.body))")
                let order = try #require(checkout.object["order"] as? String)
                orders[name] = order
                #expect(try await bff.call(.get, "/cli/v1/orders/\(order)", token: customer).object["status"] as? String == "confirmed", "\(name)")
            }
            // The literal percent-encoding of a name is another customer, who sees nothing of the first's order.
            let impostor = await token("Zo%C3%AB%20Smith"), zoe = await token("Zoë Smith")
            let zoesOrder = try #require(orders["Zoë Smith"])
            #expect(try await bff.call(.get, "/cli/v1/orders/\(zoesOrder)", token: impostor).status == .notFound)
            #expect(try await bff.call(.post, "/cli/v1/orders/\(zoesOrder)/cancel", #"{"reason":"mine"}"#, token: impostor).status == .notFound)
            let cancelled = try await bff.call(.post, "/cli/v1/orders/\(zoesOrder)/cancel", #"{"reason":"changed my mind"}"#, token: zoe)
            #expect(cancelled.status == .ok, "\(String(buffer: cancelled.body))")
            // A control character in what would be stored is the client's mistake: a 400, and it costs the service nothing.
            let nul = try await bff.call(.post, "/cli/v1/cart/items", #"{"sku":"MUG\u0000","quantity":1}"#, token: zoe)
            #expect(nul.status == .badRequest && nul.rule == "control-character", "\(String(buffer: nul.body))")
            let reason = try await bff.call(.post, "/cli/v1/orders/\(try #require(orders["a+b"]))/cancel", #"{"reason":"\u001b]0;pwned\u0007"}"#,
                                            token: token("a+b"))
            #expect(reason.status == .badRequest && reason.rule == "control-character", "\(String(buffer: reason.body))")
        }
    }

    /// Idempotency keys are each customer's own: the README's example keys (`1`, `2`) used by two customers are two
    /// commands. One customer's key made another's request fail with 422.
    @Test(.timeLimit(.minutes(2)))
    func idempotencyKeysAreScopedToTheCustomer() async throws {
        try await withBFF { shop, bff in
            try await shop.product("MUG-001", stock: 10)
            let kim = await token("kim"), ann = await token("ann")
            try await within(.seconds(20), "Ordering's copy of the catalog") {
                while try await bff.call(.post, "/cli/v1/cart/items", #"{"sku":"MUG-001","quantity":1}"#, token: kim).status != .ok {
                    try await Task.sleep(for: .milliseconds(20))
                }
            }
            #expect(try await bff.call(.post, "/cli/v1/cart/items", #"{"sku":"MUG-001","quantity":2}"#, token: kim, key: "1").status == .ok)
            let others = try await bff.call(.post, "/cli/v1/cart/items", #"{"sku":"MUG-001","quantity":3}"#, token: ann, key: "1")
            #expect(others.status == .ok, "\(String(buffer: others.body))")
            let reused = try await bff.call(.post, "/cli/v1/cart/items", #"{"sku":"MUG-001","quantity":4}"#, token: kim, key: "1")
            #expect(reused.status == .unprocessableContent && reused.rule == "idempotency-key-reused")
            let carts = (try await bff.call(.get, "/cli/v1/cart", token: kim).object, try await bff.call(.get, "/cli/v1/cart", token: ann).object)
            #expect(((carts.0["items"] as? [[String: Any]])?.first?["quantity"] as? Int) == 3)
            #expect(((carts.1["items"] as? [[String: Any]])?.first?["quantity"] as? Int) == 3)
            // The client's If-Match goes with its command: a stale one is refused, and so is a malformed one.
            var headers: HTTPFields = [.contentType: "application/json", .authorization: "Bearer \(kim)", .ifMatch: "\"999\""]
            headers[HTTPField.Name("Idempotency-Key")!] = UUID().uuidString
            let stale = try await bff.execute(uri: "/cli/v1/cart/items", method: .post, headers: headers,
                                              body: ByteBuffer(string: #"{"sku":"MUG-001","quantity":1}"#))
            #expect(stale.status == .preconditionFailed, "\(String(buffer: stale.body))")
            headers[.ifMatch] = "soon"
            headers[HTTPField.Name("Idempotency-Key")!] = UUID().uuidString
            let garbage = try await bff.execute(uri: "/cli/v1/cart/items", method: .post, headers: headers,
                                                body: ByteBuffer(string: #"{"sku":"MUG-001","quantity":1}"#))
            #expect(garbage.status == .badRequest, "\(String(buffer: garbage.body))")
        }
    }

    /// One customer holding many long polls on a slow order must not stop the others: waits go through connections,
    /// a bulkhead and a breaker of their own, and a customer has at most four at once (the rest are answered at once).
    /// Eight such waits used to hold every connection the BFF had to Ordering, and 52 of 53 other requests failed.
    @Test(.timeLimit(.minutes(3)))
    func oneCustomersLongPollsDoNotStopTheOthers() async throws {
        try await withBFF { shop, bff in
            try await shop.product("MUG-001", stock: 100)
            let port = try #require(bff.port)
            let hog = await token("hog")
            try await within(.seconds(20), "Ordering's copy of the catalog") {
                while try await bff.call(.post, "/cli/v1/cart/items", #"{"sku":"MUG-001","quantity":1}"#, token: hog).status != .ok {
                    try await Task.sleep(for: .milliseconds(20))
                }
            }
            // The slow card: the provider answers after 30 s, so the order stays processing for the whole test.
            let placed = try await bff.call(.post, "/cli/v1/checkout?wait=0", #"{"card":"4000000000000101"}"#, token: hog)
            let order = try #require(placed.object["order"] as? String, "\(String(buffer: placed.body))")

            // A client of its own, with connections enough for everything below at once.
            var configuration = HTTPClient.Configuration()
            configuration.connectionPool.concurrentHTTP1ConnectionsPerHostSoftLimit = 64
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            defer { _ = client.shutdown() }
            @Sendable func get(_ path: String, _ token: String) async -> (status: UInt, seconds: Double) {
                var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
                request.headers.add(name: "Authorization", value: "Bearer \(token)")
                let started = ContinuousClock.now
                guard let response = try? await client.execute(request, timeout: .seconds(30)),
                      (try? await response.body.collect(upTo: 1 << 20)) != nil else { return (0, 0) }
                let took = ContinuousClock.now - started
                return (response.status.code, Double(took.components.seconds) + Double(took.components.attoseconds) / 1e18)
            }
            let polls = Task {
                await withTaskGroup(of: Void.self) { group in
                    for _ in 0..<16 { group.addTask { _ = await get("/cli/v1/orders/\(order)?wait=10", hog) } }
                }
            }
            // Once the four waits the customer may have are under way (the BFF's metrics say so), the others start. The
            // waits hold no connection to Ordering: nothing is in flight to it while they wait.
            let admin = await token("ops", .admin)
            try await within(.seconds(20), "the long polls to be under way, holding nothing of Ordering's") {
                while true {
                    let metrics = try await bff.metrics(token: admin)
                    if value(metrics, "order_waits_in_progress", []) ?? 0 >= 4, value(metrics, "bulkhead_in_flight", [#"service="ordering""#]) == 0 {
                        break
                    }
                    try await Task.sleep(for: .milliseconds(20))  // the metrics change as requests arrive: nothing to await
                }
            }
            let others = await withTaskGroup(of: (UInt, Double).self) { group in
                for customer in 0..<5 {
                    group.addTask {
                        var worst: (UInt, Double) = (200, 0)
                        for _ in 0..<10 {
                            let answer = await get("/cli/v1/cart", token("shopper-\(customer)"))
                            if answer.status != 200 || answer.seconds > worst.1 { worst = answer }
                        }
                        return worst
                    }
                }
                return await group.reduce(into: [(UInt, Double)]()) { $0.append($1) }
            }
            // Every other customer's requests answered, and none held up behind the polls (they last ten seconds).
            #expect(others.allSatisfy { $0.0 == 200 && $0.1 < 5 }, "\(others)")
            await polls.value
        }
    }

    /// A wait for an order ends when the BFF's watch of Ordering's feed says the order changed: it holds no request
    /// to Ordering meanwhile, and, while the watch follows the feed, it does not look again until told.
    @Test func aWaitEndsWhenOrderingsFeedSaysItsOrderChanged() async throws {
        // Authorisations fail for now, retried every two seconds or more: the order waits for its payment meanwhile.
        let saga = FulfilmentOrchestrator.Configuration(retry: .init(attempts: 20, firstDelay: .seconds(2), maximumDelay: .seconds(2)),
                                                        pollInterval: .milliseconds(50))
        try await withBFF(saga: saga) { shop, bff in
            try await shop.product("MUG-001", stock: 3)
            try await shop.outage(["authorise"])
            let order = try await shop.order("kim", "MUG-001")
            try await within(.seconds(20), "a failed authorisation") {
                while try await shop.ordering.object("/admin/sagas/\(order)")["attempts"] as? Int ?? 0 < 1 { try await Task.sleep(for: .milliseconds(20)) }
            }
            let kim = await token("kim"), admin = await token("ops", .admin)
            let started = ContinuousClock.now
            // On a connection of its own: the test client sends one request at a time.
            let port = try #require(bff.port)
            let waited = Task {
                var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/cli/v1/orders/\(order)?wait=10")
                request.headers.add(name: "Authorization", value: "Bearer \(kim)")
                let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
                let body = try await response.body.collect(upTo: 1 << 20)
                return (status: response.status.code, body: String(buffer: body))
            }
            try await within(.seconds(20), "the wait to be under way, with the watch following the feed") {
                while true {
                    let metrics = try await bff.metrics(token: admin)
                    if value(metrics, "order_waits_in_progress", []) == 1, value(metrics, "order_watch_following", []) == 1 { break }
                    try await Task.sleep(for: .milliseconds(20))  // the metrics change as requests arrive: nothing to await
                }
            }
            try await shop.outage([])  // the next attempt authorises, and the order is confirmed
            let answer = try await waited.value
            #expect(answer.status == 200 && answer.body.contains(#""status":"confirmed""#), "\(answer.body)")
            #expect(ContinuousClock.now - started < .seconds(9), "the wait ran out instead of being told")
        }
    }

    @Test func aBurstOverTheLimitGets429WithRetryAfterAndOtherClientsAreUnaffected() async throws {
        try await withBFF(rate: 0.05, burst: 3) { _, bff in
            let kim = await token("kim"), ann = await token("ann")
            var statuses: [HTTPResponse.Status] = []
            for _ in 0..<4 { statuses.append(try await bff.call(.get, "/cli/v1/cart", token: kim).status) }
            #expect(statuses == [.ok, .ok, .ok, .tooManyRequests])
            let limited = try await bff.call(.get, "/cli/v1/cart", token: kim)
            #expect(limited.status == .tooManyRequests && limited.rule == "rate-limited")
            #expect(limited.headers[.retryAfter].flatMap(Int.init).map { (1...20).contains($0) } == true)
            #expect(try await bff.call(.get, "/cli/v1/cart", token: ann).status == .ok)
            #expect(try await bff.call(.get, "/health/live", token: kim).status == .ok)

            // Bad tokens count too, against the peer's address: guessing tokens is limited like anything else.
            var forged: [HTTPResponse.Status] = []
            for _ in 0..<4 { forged.append(try await bff.call(.get, "/cli/v1/cart", token: "not.a.token").status) }
            #expect(forged == [.unauthorized, .unauthorized, .unauthorized, .tooManyRequests], "\(forged)")
        }
    }
}

@Suite("The web BFF")
struct WebBFFTests {
    @Test func checkoutAnswers202AndTheEventStreamReportsTheOutcome() async throws {
        try await withBFF { shop, bff in
            let ops = await token("ops", .admin), kim = await token("kim")
            // The back office needs the admin role; with it, products and stock go through to Catalog.
            let refused = try await bff.call(.post, "/web/v1/admin/products", #"{"sku":"MUG-001","name":"Mug","price":{"amount":1250,"currency":"EUR"}}"#, token: kim)
            #expect(refused.status == .forbidden && refused.rule == "admin-only")
            let added = try await bff.call(.post, "/web/v1/admin/products", #"{"sku":"MUG-001","name":"Mug","price":{"amount":1250,"currency":"EUR"}}"#, token: ops)
            #expect(added.status == .created, "\(String(buffer: added.body))")
            #expect(try await bff.call(.post, "/web/v1/admin/products/MUG-001/stock", #"{"quantity":3}"#, token: ops).status == .ok)
            let bad = try await bff.call(.post, "/web/v1/admin/products/MUG-001/stock", #"{"quantity":-3}"#, token: ops)
            #expect(bad.status == .unprocessableContent && bad.rule == "invalid-quantity")

            try await within(.seconds(20), "Ordering's copy of the catalog") {
                while try await bff.call(.post, "/web/v1/cart/items", #"{"sku":"MUG-001","quantity":1}"#, token: kim).status != .ok {
                    try await Task.sleep(for: .milliseconds(20))
                }
            }
            let checkout = try await bff.call(.post, "/web/v1/checkout", #"{"card":"4242424242424242"}"#, token: kim)
            #expect(checkout.status == .accepted, "\(String(buffer: checkout.body))")
            let links = try #require(checkout.object["links"] as? [String: String])
            let order = try #require(checkout.object["order"] as? String)
            #expect(checkout.headers[.location] == links["self"])

            // The stream: the status now, each change, and it ends with the outcome.
            let stream = try await bff.call(.get, try #require(links["events"]), token: kim)
            #expect(stream.status == .ok && stream.headers[.contentType] == "text/event-stream")
            let statuses = String(buffer: stream.body).components(separatedBy: "\n").filter { $0.hasPrefix("data: ") }.compactMap { line in
                (try? JSONSerialization.jsonObject(with: Data(line.dropFirst(6).utf8)) as? [String: String])?["status"]
            }
            #expect(statuses.last == "confirmed" && Set(statuses).count == statuses.count, "\(statuses)")
            #expect(try await bff.call(.get, try #require(links["events"]), token: token("ann")).status == .notFound)

            // The order page combines the order, its saga, its payment and its timeline.
            try await within(.seconds(20), "the saga to complete") {
                while try await bff.call(.get, "/web/v1/orders/\(order)", token: kim).object["payment"].flatMap({ $0 as? [String: Any] })?["status"] as? String != "captured" {
                    try await Task.sleep(for: .milliseconds(20))
                }
            }
            let page = try await bff.call(.get, "/web/v1/orders/\(order)", token: kim)
            #expect(page.object["status"] as? String == "confirmed")
            #expect((page.object["fulfilment"] as? [String: Any])?["status"] as? String == "completed")
            let etag = try #require(page.headers[.eTag])
            var headers: HTTPFields = [.authorization: "Bearer \(kim)", .ifNoneMatch: etag]
            #expect(try await bff.execute(uri: "/web/v1/orders/\(order)", method: .get, headers: headers).status == .notModified)
            headers[.ifNoneMatch] = "\"stale\""
            #expect(try await bff.execute(uri: "/web/v1/orders/\(order)", method: .get, headers: headers).status == .ok)

            // Admins ship it; a customer may not.
            #expect(try await bff.call(.post, "/web/v1/admin/orders/\(order)/ship", token: kim).status == .forbidden)
            #expect(try await bff.call(.post, "/web/v1/admin/orders/\(order)/ship", token: ops).status == .ok)
            let parked = try await bff.call(.get, "/web/v1/admin/sagas?status=parked", token: ops)
            #expect(parked.status == .ok && (parked.object["sagas"] as? [Any])?.isEmpty == true)
        }
    }
}
