import CatalogService
import EventStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import TestSupport
import Testing

/// Runs `body` against a Catalog service on a fresh database, over real HTTP.
func withCatalog(_ body: @escaping @Sendable (any TestClientProtocol, DatabaseURL) async throws -> Void) async throws {
    let url = try await TestDatabase.create()
    let app = CatalogService.application(.init(port: 0, database: url), logger: TestDatabase.logger)
    try await app.test(.live) { client in try await body(client, url) }
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

@Suite("Catalog service over HTTP")
struct CatalogServiceTests {
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

    @Test(.timeLimit(.minutes(1)))
    func fiftyConcurrentReservationsOfOneUnitAgainstTenInStockReserveExactlyTen() async throws {
        try await withCatalog { client, _ in
            try await client.addProduct("MUG-001", stock: 10)
            let statuses = try await withThrowingTaskGroup(of: (HTTPResponse.Status, String?).self) { group in
                for order in 0..<50 {
                    group.addTask {
                        let response = try await client.send(.post, "/reservations", #"{"order":"order-\#(order)","lines":[{"sku":"MUG-001","quantity":1}]}"#)
                        return (response.status, response.rule)
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
        .init(name: "unknown route", method: .get, uri: "/nothing/here", body: nil, status: .notFound, rule: "not-found"),
    ]

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
}
