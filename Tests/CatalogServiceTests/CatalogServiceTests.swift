import AsyncHTTPClient
import CatalogService
import Essentials
import EventStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Identity
import ServiceRuntime
import TestSupport
import Testing

/// Runs `body` against a Catalog service on a fresh database, over real HTTP.
func withCatalog(_ body: @escaping @Sendable (any TestClientProtocol, DatabaseURL) async throws -> Void) async throws {
    let url = try await TestDatabase.create()
    let app = try await CatalogService.application(.init(port: 0, database: url, viewsDirectory: scratchViews(), serviceSecret: TestSecrets.service).forTests, logger: TestDatabase.logger)
    try await app.test(.live) { service in try await body(try await service.calling("catalog"), url) }
}

extension TestClientProtocol {
    func addProduct(_ sku: String, price: Int = 1250, stock: Int? = nil) async throws {
        let added = try await send(.post, "/products", #"{"sku":"\#(sku)","name":"Product \#(sku)","description":"","price":{"amount":\#(price),"currency":"EUR"}}"#)
        #expect(added.status == .created, "\(String(buffer: added.body))")
        if let stock {
            let received = try await send(.post, "/products/\(sku)/stock", #"{"quantity":\#(stock)}"#)
            #expect(received.status == .ok, "\(String(buffer: received.body))")
        }
    }
}

func eventCount(_ url: DatabaseURL) async throws -> Int {
    try await TestDatabase.withConnection(url) { connection in
        for try await count in try await connection.query("SELECT count(*) FROM events", logger: TestDatabase.logger).decode(Int.self) {
            return count
        }
        return 0
    }
}

/// The files under `folder` that this process has open.
func openFiles(under folder: URL) -> [String] {
    let descriptors = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
    let prefix = folder.resolvingSymlinksInPath().path + "/"
    return descriptors.compactMap { try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\($0)") }.filter { $0.hasPrefix(prefix) }
}

@Suite("Catalog service over HTTP")
struct CatalogServiceTests {
    /// Services started one after another in a process (as the tests and the benchmarks do, and anyone embedding
    /// them) must not keep the views, and the descriptors, of the ones that stopped.
    @Test func aStoppedServiceKeepsNoneOfItsViewFilesOpen() async throws {
        let url = try await TestDatabase.create()
        let views = scratchViews()
        try await {
            let app = try await CatalogService.application(.init(port: 0, database: url, viewsDirectory: views, serviceSecret: TestSecrets.service).forTests, logger: TestDatabase.logger)
            try await app.test(.live) { service in
                let client = try await service.calling("catalog")
                try await client.addProduct("MUG-001", stock: 3)
                #expect(try await client.execute(uri: "/metrics", method: .get).status == .ok)
                #expect(!openFiles(under: views).isEmpty, "a running service reads its views")
            }
        }()
        #expect(openFiles(under: views) == [])
    }

    @Test func aReplayedCommandAnswersTheSameAndWritesNothing() async throws {
        try await withCatalog { client, url in
            let body = #"{"sku":"MUG-001","name":"Mug","description":"A mug.","price":{"amount":1250,"currency":"EUR"}}"#
            let first = try await client.send(.post, "/products", body, key: "add-mug")
            #expect(first.status == .created)
            #expect(first.headers[.eTag] == "\"1\"" && first.headers[.location] == "/products/MUG-001")
            let again = try await client.send(.post, "/products", body, key: "add-mug")
            #expect(again.status == .created && again.body == first.body)
            #expect(again.headers[HTTPField.Name("Idempotent-Replayed")!] == "true")
            #expect(try await eventCount(url) == 1)

            // The same key with another body is refused, and acts no more.
            let reused = try await client.send(.post, "/products", body.replacingOccurrences(of: "1250", with: "999"), key: "add-mug")
            #expect(reused.status == .unprocessableContent && reused.rule == "idempotency-key-reused")
            #expect(try await eventCount(url) == 1)

            // A refusal is kept as well: the retry gets the same refusal.
            let twice = try await client.send(.post, "/products", body, key: "add-mug-again")
            #expect(twice.status == .unprocessableContent && twice.rule == "product-already-exists")
            let twiceAgain = try await client.send(.post, "/products", body, key: "add-mug-again")
            #expect(twiceAgain.status == .unprocessableContent && twiceAgain.body == twice.body)
            #expect(try await eventCount(url) == 1)
        }
    }

    /// Commands are planned on the states an instance keeps (one statement), and decided again in a transaction when
    /// another instance moved a stream on: whichever instance answers, it answers the stream's real version and the
    /// real position of what it wrote, and a replay answers the same.
    @Test func twoInstancesTakingTurnsAnswerTheRealVersionsAndPositions() async throws {
        let url = try await TestDatabase.create()
        let one = try await CatalogService.application(.init(port: 0, database: url, viewsDirectory: scratchViews(), serviceSecret: TestSecrets.service).forTests, logger: TestDatabase.logger)
        let other = try await CatalogService.application(.init(port: 0, database: url, viewsDirectory: scratchViews(), serviceSecret: TestSecrets.service).forTests, logger: TestDatabase.logger)
        try await one.test(.live) { firstService in
            try await other.test(.live) { secondService in
                let first = try await firstService.calling("catalog"), second = try await secondService.calling("catalog")
                try await first.addProduct("MUG-001")
                var positions: [Position] = []
                for round in 1...6 {
                    let client = round.isMultiple(of: 2) ? first : second
                    let received = try await client.send(.post, "/products/MUG-001/stock", #"{"quantity":\#(round)}"#, key: "receive-\(round)")
                    #expect(received.status == .ok && received.headers[.eTag] == "\"\(round)\"", "\(String(buffer: received.body))")
                    positions.append(try #require(Position(received.object["position"] as? String ?? ""), "\(String(buffer: received.body))"))
                    let again = try await client.send(.post, "/products/MUG-001/stock", #"{"quantity":\#(round)}"#, key: "receive-\(round)")
                    #expect(again.body == received.body && again.headers[.idempotentReplayed] == "true")
                }
                let stored = try await TestDatabase.withConnection(url) { connection in
                    var positions: [Position] = []
                    let rows = try await connection.query(
                        "SELECT transaction_id, global_position FROM events WHERE stream_id = 'stock-MUG-001' ORDER BY stream_version",
                        logger: TestDatabase.logger)
                    for try await (transaction, position) in rows.decode((Int64, Int64).self) {
                        positions.append(Position(transactionID: transaction, globalPosition: position))
                    }
                    return positions
                }
                #expect(stored == positions)
                for client in [first, second] {
                    #expect(try await client.object("/products/MUG-001")["stock"] as? [String: Int] == ["onHand": 21, "reserved": 0, "available": 21])
                }
            }
        }
    }

    @Test func ifMatchGivesOptimisticConcurrency() async throws {
        try await withCatalog { client, url in
            try await client.addProduct("MUG-001")
            let stale = try await client.send(.put, "/products/MUG-001/name", #"{"name":"Big mug"}"#, ifMatch: "\"0\"")
            #expect(stale.status == .preconditionFailed && stale.rule == "version-mismatch")
            #expect(stale.object["actualVersion"] as? Int == 1)
            #expect(stale.headers[.contentType] == "application/problem+json")
            let current = try await client.send(.put, "/products/MUG-001/name", #"{"name":"Big mug"}"#, ifMatch: "\"1\"")
            #expect(current.status == .ok && current.headers[.eTag] == "\"2\"")
            let malformed = try await client.send(.put, "/products/MUG-001/name", #"{"name":"Mug"}"#, ifMatch: "2")
            #expect(malformed.status == .badRequest && malformed.rule == "malformed-if-match")
            #expect(try await client.object("/products/MUG-001")["name"] as? String == "Big mug")
            #expect(try await eventCount(url) == 2)
        }
    }

    @Test(.timeLimit(.minutes(2)))
    func fiftyConcurrentReservationsOfOneUnitAgainstTenInStockReserveExactlyTen() async throws {
        try await withCatalog { client, _ in
            try await client.addProduct("MUG-001", stock: 10)
            let authorization = try await ServiceIdentity(name: "bff", secret: TestSecrets.service).authorization(to: "catalog")
            let statuses = try await withThrowingTaskGroup(of: (HTTPResponse.Status, String?).self) { group in
                for order in 0..<50 {
                    group.addTask {
                        // Its own client, with a minute to answer: fifty reservations of one SKU queue on its lock, and on
                        // two cores busy with the whole suite the last one can wait past the test client's 20 s.
                        var request = HTTPClientRequest(url: "http://127.0.0.1:\(try #require(client.port))/reservations")
                        request.method = .POST
                        request.headers.add(name: "Content-Type", value: "application/json")
                        request.headers.add(name: "Idempotency-Key", value: UUID().uuidString)
                        request.headers.add(name: "Authorization", value: authorization)
                        request.body = .bytes(ByteBuffer(string: #"{"order":"order-\#(order)","lines":[{"sku":"MUG-001","quantity":1}]}"#))
                        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
                        let body = try await response.body.collect(upTo: 1 << 20)
                        let rule = (try? JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any])?["rule"] as? String
                        return (HTTPResponse.Status(code: Int(response.status.code)), rule)
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(statuses.filter { $0.0 == .created }.count == 10)
            #expect(statuses.filter { $0.0 == .unprocessableContent && $0.1 == "insufficient-stock" }.count == 40)
            let stock = try await client.object("/products/MUG-001")["stock"] as? [String: Int]
            #expect(stock == ["onHand": 10, "reserved": 10, "available": 0])
        }
    }

    /// Two identical reservations at once get one reply, and reserve once.
    @Test(.timeLimit(.minutes(2)))
    func identicalRequestsAtOnceGetOneReplyAndReserveOnce() async throws {
        try await withCatalog { client, _ in
            try await client.addProduct("MUG-001", stock: 100)
            let port = try #require(client.port)
            for pair in 0..<20 {
                let replies = try await sendAtOnce(port: port, audience: "catalog", .POST, "/reservations",
                                                   #"{"order":"o-\#(pair)","lines":[{"sku":"MUG-001","quantity":1}]}"#, key: "reserve-\(pair)")
                #expect(replies.map(\.status) == [201, 201], "\(replies)")
                #expect(replies[0].body == replies[1].body)
            }
            let stock = try await client.object("/products/MUG-001")["stock"] as? [String: Int]
            #expect(stock == ["onHand": 100, "reserved": 20, "available": 80])
        }
    }

    @Test func aReservationOfSeveralSKUsIsAllOrNothing() async throws {
        try await withCatalog { client, _ in
            try await client.addProduct("MUG-001", stock: 5)
            try await client.addProduct("TEE-001", stock: 1)
            let refused = try await client.send(.post, "/reservations", #"{"order":"o-1","lines":[{"sku":"MUG-001","quantity":2},{"sku":"TEE-001","quantity":2}]}"#)
            #expect(refused.status == .unprocessableContent && refused.rule == "insufficient-stock")
            #expect((try await client.object("/products/MUG-001")["stock"] as? [String: Int])?["available"] == 5)
            let reserved = try await client.send(.post, "/reservations", #"{"order":"o-1","lines":[{"sku":"MUG-001","quantity":2},{"sku":"TEE-001","quantity":1}]}"#)
            #expect(reserved.status == .created)
            #expect((try await client.object("/products/MUG-001")["stock"] as? [String: Int])?["available"] == 3)
            #expect((try await client.object("/products/TEE-001")["stock"] as? [String: Int])?["available"] == 0)
            // Releasing and committing, per SKU; each twice changes nothing the second time.
            for _ in 0..<2 {
                #expect(try await client.send(.post, "/stock/MUG-001/reservations/o-1/release", nil).status == .ok)
                #expect(try await client.send(.post, "/stock/TEE-001/reservations/o-1/commit", nil).status == .ok)
            }
            #expect(try await client.object("/products/MUG-001")["stock"] as? [String: Int] == ["onHand": 5, "reserved": 0, "available": 5])
            #expect(try await client.object("/products/TEE-001")["stock"] as? [String: Int] == ["onHand": 0, "reserved": 0, "available": 0])
        }
    }

    struct BadRequest: Sendable, CustomTestStringConvertible {
        let name: String
        let method: HTTPRequest.Method
        let uri: String
        let body: String?
        var key: String? = "fresh"
        var contentType = "application/json"
        let status: HTTPResponse.Status
        let rule: String
        var testDescription: String { name }
    }

    static let badRequests: [BadRequest] = [
        .init(name: "malformed JSON", method: .post, uri: "/products", body: #"{"sku":"#, status: .badRequest, rule: "malformed-json"),
        .init(name: "not an object", method: .post, uri: "/products", body: #"[1,2]"#, status: .badRequest, rule: "malformed-json"),
        .init(name: "wrong type", method: .post, uri: "/products/MUG-001/stock", body: #"{"quantity":"ten"}"#, status: .badRequest, rule: "malformed-json"),
        .init(name: "missing member", method: .post, uri: "/products", body: #"{"sku":"X-1","name":"X"}"#, status: .badRequest, rule: "malformed-json"),
        .init(name: "no body", method: .post, uri: "/products/MUG-001/stock", body: nil, status: .badRequest, rule: "missing-body"),
        // Text the shop would store or pass on holds no control character: PostgreSQL refuses a NUL (a 500, which counted
        // against the service's circuit breaker), and escapes or bidirectional overrides deceive whoever reads them.
        .init(name: "a NUL in a name", method: .post, uri: "/products",
              body: #"{"sku":"MUG-009","name":"Mug\u0000","description":"","price":{"amount":100,"currency":"EUR"}}"#, status: .badRequest,
              rule: "control-character"),
        .init(name: "an escape sequence in a description", method: .post, uri: "/products",
              body: #"{"sku":"MUG-009","name":"Mug","description":"\u001b[2J","price":{"amount":100,"currency":"EUR"}}"#, status: .badRequest,
              rule: "control-character"),
        .init(name: "a bidirectional override, raw", method: .post, uri: "/products",
              body: "{\"sku\":\"MUG-009\",\"name\":\"Mug\u{202E}\",\"description\":\"\",\"price\":{\"amount\":100,\"currency\":\"EUR\"}}",
              status: .badRequest, rule: "control-character"),
        .init(name: "a newline, as JSON's short escape", method: .post, uri: "/products",
              body: #"{"sku":"MUG-009","name":"Mug\nBig","description":"","price":{"amount":100,"currency":"EUR"}}"#, status: .badRequest,
              rule: "control-character"),
        .init(name: "a tab in a nested member", method: .post, uri: "/products",
              body: #"{"sku":"MUG-009","name":"Mug","description":"","price":{"amount":100,"currency":"EU\tR"}}"#, status: .badRequest,
              rule: "control-character"),
        .init(name: "a C1 control in a search", method: .get, uri: "/products/search?q=mug%C2%9B", body: nil, status: .badRequest,
              rule: "control-character"),
        .init(name: "a NUL in a path", method: .get, uri: "/products/MUG%00", body: nil, status: .badRequest, rule: "control-character"),
        .init(name: "a path that is not UTF-8", method: .get, uri: "/products/MUG%FF", body: nil, status: .badRequest, rule: "malformed-path"),
        .init(name: "negative quantity", method: .post, uri: "/products/MUG-001/stock", body: #"{"quantity":-5}"#, status: .unprocessableContent, rule: "invalid-quantity"),
        .init(name: "zero quantity", method: .post, uri: "/reservations", body: #"{"order":"o-1","lines":[{"sku":"MUG-001","quantity":0}]}"#, status: .unprocessableContent, rule: "invalid-quantity"),
        .init(name: "huge quantity", method: .post, uri: "/products/MUG-001/stock", body: #"{"quantity":1000000000000}"#, status: .unprocessableContent, rule: "invalid-quantity"),
        .init(name: "quantity beyond 64 bits", method: .post, uri: "/products/MUG-001/stock", body: #"{"quantity":99999999999999999999999}"#, status: .badRequest, rule: "malformed-json"),
        .init(name: "unknown SKU in the path", method: .post, uri: "/products/NOPE-1/stock", body: #"{"quantity":1}"#, status: .notFound, rule: "not-found"),
        .init(name: "unknown SKU in a reservation", method: .post, uri: "/reservations", body: #"{"order":"o-1","lines":[{"sku":"NOPE-1","quantity":1}]}"#, status: .notFound, rule: "not-found"),
        .init(name: "malformed SKU", method: .post, uri: "/products", body: #"{"sku":"mug 1","name":"Mug","price":{"amount":1,"currency":"EUR"}}"#, status: .unprocessableContent, rule: "invalid-sku"),
        .init(name: "unknown currency", method: .post, uri: "/products", body: #"{"sku":"CAP-1","name":"Cap","price":{"amount":100,"currency":"EURO"}}"#, status: .unprocessableContent, rule: "invalid-money"),
        .init(name: "negative price", method: .post, uri: "/products", body: #"{"sku":"CAP-1","name":"Cap","price":{"amount":-100,"currency":"EUR"}}"#, status: .unprocessableContent, rule: "invalid-money"),
        .init(name: "absurd price", method: .post, uri: "/products", body: #"{"sku":"CAP-1","name":"Cap","price":{"amount":900000000000000,"currency":"EUR"}}"#, status: .unprocessableContent, rule: "invalid-money"),
        .init(name: "another currency than the product's", method: .put, uri: "/products/MUG-001/price", body: #"{"price":{"amount":100,"currency":"USD"}}"#, status: .unprocessableContent, rule: "invalid-money"),
        .init(name: "empty name", method: .put, uri: "/products/MUG-001/name", body: #"{"name":"   "}"#, status: .unprocessableContent, rule: "invalid-name"),
        .init(name: "empty reservation", method: .post, uri: "/reservations", body: #"{"order":"o-1","lines":[]}"#, status: .unprocessableContent, rule: "empty-reservation"),
        .init(name: "oversize body", method: .post, uri: "/products", body: #"{"sku":"X-1","name":"\#(String(repeating: "x", count: 70_000))"}"#, status: .contentTooLarge, rule: "body-too-large"),
        .init(name: "no idempotency key", method: .post, uri: "/products/MUG-001/stock", body: #"{"quantity":1}"#, key: nil, status: .badRequest, rule: "missing-idempotency-key"),
        .init(name: "not JSON", method: .post, uri: "/products/MUG-001/stock", body: "quantity=1", contentType: "application/x-www-form-urlencoded", status: .unsupportedMediaType, rule: "unsupported-media-type"),
        .init(name: "a type that only starts like JSON's", method: .post, uri: "/products/MUG-001/stock", body: #"{"quantity":1}"#,
              contentType: "application/jsonx", status: .unsupportedMediaType, rule: "unsupported-media-type"),
        .init(name: "no Content-Type", method: .post, uri: "/products/MUG-001/stock", body: #"{"quantity":1}"#, contentType: "",
              status: .unsupportedMediaType, rule: "unsupported-media-type"),
        .init(name: "unknown route", method: .get, uri: "/nothing/here", body: nil, status: .notFound, rule: "not-found"),
    ]

    /// Members a command does not have are ignored, whatever they hold: only what would be stored is checked.
    @Test func membersACommandDoesNotHaveAreIgnoredWhateverTheyHold() async throws {
        try await withCatalog { client, _ in
            let added = try await client.send(.post, "/products",
                #"{"sku":"MUG-001","name":"Mug","price":{"amount":100,"currency":"EUR","note\u0000":"\u001b[2J"},"extra\n":[1,"\u0000"]}"#)
            #expect(added.status == .created, "\(String(buffer: added.body))")
        }
    }

    @Test func badRequestsGetTheRightProblemAndWriteNothing() async throws {
        try await withCatalog { client, url in
            try await client.addProduct("MUG-001", stock: 3)
            let before = try await eventCount(url)
            for bad in Self.badRequests {
                let response = try await client.send(bad.method, bad.uri, bad.body, key: bad.key.map { _ in UUID().uuidString }, contentType: bad.contentType)
                #expect(response.status == bad.status, "\(bad.name): \(String(buffer: response.body))")
                #expect(response.rule == bad.rule, "\(bad.name): \(String(buffer: response.body))")
                #expect(response.headers[.contentType] == "application/problem+json", "\(bad.name)")
                #expect(response.object["status"] as? Int == Int(bad.status.code), "\(bad.name)")
            }
            #expect(try await eventCount(url) == before)
        }
    }

    @Test func healthAndReadiness() async throws {
        try await withCatalog { client, _ in
            let live = try await client.execute(uri: "/health/live", method: .get)
            let ready = try await client.execute(uri: "/health/ready", method: .get)
            #expect(live.status == .ok && ready.status == .ok)
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func theListingAndSearchReadTheViewAndReadTheirOwnWrites() async throws {
        try await withCatalog { client, _ in
            try await client.addProduct("MUG-001", stock: 5)
            try await client.send(.post, "/products", #"{"sku":"MUG-002","name":"Big mug","description":"For long builds.","price":{"amount":1590,"currency":"EUR"}}"#)
            try await client.send(.post, "/products", #"{"sku":"TEE-001","name":"Tee","description":"Cotton, with a mug printed on it.","price":{"amount":2200,"currency":"EUR"}}"#)
            let reserved = try await client.send(.post, "/reservations", #"{"order":"o-1","lines":[{"sku":"MUG-001","quantity":2}]}"#)
            let position = try #require(reserved.object["position"] as? String)

            let first = try await client.object("/products?limit=2&minPosition=\(position)")
            let view = try #require(first["view"] as? [String: Any])
            #expect(view["stale"] as? Bool == false)
            let products = try #require(first["products"] as? [[String: Any]])
            #expect(products.map { $0["sku"] as? String } == ["MUG-001", "MUG-002"])
            #expect(products.first?["available"] as? Int == 3 && products.first?["reserved"] as? Int == 2)
            let next = try #require(first["next"] as? String)
            let second = try await client.object("/products?limit=2&after=\(next)")
            #expect((second["products"] as? [[String: Any]])?.map { $0["sku"] as? String } == ["TEE-001"])
            #expect(second["next"] == nil)

            // Search: by name first, then by description; prefixes match; FTS syntax in the text is just text.
            let mugs = try await client.object("/products/search?q=mug")
            #expect((mugs["products"] as? [[String: Any]])?.map { $0["sku"] as? String } == ["MUG-001", "MUG-002", "TEE-001"])
            let big = try await client.object("/products/search?q=BIG%20mu")
            #expect((big["products"] as? [[String: Any]])?.map { $0["sku"] as? String } == ["MUG-002"])
            let odd = try await client.execute(uri: "/products/search?q=%22mug%22%20OR%20NEAR(*", method: .get)
            #expect(odd.status == .ok)
            let none = try await client.execute(uri: "/products/search?q=", method: .get)
            #expect(none.status == .badRequest && none.rule == "missing-query")

            // A position the view cannot reach in time: the answer comes anyway, and says it is stale.
            let far = try await client.object("/products?minPosition=999999999-1")
            #expect((far["view"] as? [String: Any])?["stale"] as? Bool == true)
            let malformed = try await client.execute(uri: "/products?minPosition=soon", method: .get)
            #expect(malformed.status == .badRequest && malformed.rule == "malformed-position")

            // The service reports its views: caught up here, so no lag.
            let views = try #require(try await client.object("/admin/views")["views"] as? [[String: Any]])
            #expect(views.map { $0["name"] as? String } == ["catalog-product-listing"])
            #expect((views.first?["lag"] as? [String: Any])?["events"] as? Int == 0)
            #expect((views.first?["eventsHandled"] as? Int ?? 0) >= 4)
        }
    }
}
