import CatalogService
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Identity
import TestSupport
import Testing

@Suite("A service answers the shop's processes only")
struct CallerTests {
    /// Without a service token meant for it, a service refuses every request but its health checks and metrics
    /// with a 401 problem; a customer's token, another service's, or one signed with another secret is no better.
    @Test func requestsWithoutAServiceTokenForThisServiceAreRefused() async throws {
        let url = try await TestDatabase.create()
        let app = try await CatalogService.application(
            .init(port: 0, database: url, viewsDirectory: scratchViews(), serviceSecret: TestSecrets.service).forTests, logger: TestDatabase.logger)
        try await app.test(.live) { anonymous in
            let bff = try await anonymous.calling("catalog")
            try await bff.addProduct("MUG-001", stock: 3)
            let forBilling = try await ServiceIdentity(name: "bff", secret: TestSecrets.service).authorization(to: "billing")
            let stranger = try await ServiceIdentity(name: "bff", secret: Data(repeating: 3, count: 32)).authorization(to: "catalog")
            let customer = "Bearer " + (try await TokenSigner(secret: TestSecrets.service)
                .issue(Claims(subject: "kim", role: .admin, issuedAt: Date(), expiresAt: Date() + 60)))
            for authorization in [nil, forBilling, stranger, customer, "Bearer ", "Basic a2ltOnB3"] {
                var headers: HTTPFields = [.contentType: "application/json", HTTPField.Name("Idempotency-Key")!: UUID().uuidString]
                if let authorization { headers[.authorization] = authorization }
                for (method, path) in [(HTTPRequest.Method.get, "/products/MUG-001"), (.get, "/products"), (.get, "/feed/products"),
                                       (.get, "/admin/views"), (.post, "/products/MUG-001/stock")] {
                    let answer = try await anonymous.execute(uri: path, method: method, headers: headers,
                                                             body: method == .post ? ByteBuffer(string: #"{"quantity":5}"#) : nil)
                    #expect(answer.status == .unauthorized && answer.rule == "unauthenticated-caller", "\(method) \(path) with \(authorization ?? "nothing")")
                    #expect(answer.headers[.contentType] == "application/problem+json")
                }
            }
            // Nothing was received; the open routes stay open.
            #expect((try await bff.object("/products/MUG-001")["stock"] as? [String: Any])?["onHand"] as? Int == 3)
            #expect(try await anonymous.execute(uri: "/health/ready", method: .get).status == .ok)
            #expect(try await anonymous.execute(uri: "/metrics", method: .get).status == .ok)
        }
    }

    /// Idempotency keys are scoped to the calling process: the same key from two callers is two requests, while
    /// one caller's key, reused for another request, is still refused.
    @Test func idempotencyKeysAreScopedToTheCaller() async throws {
        let url = try await TestDatabase.create()
        let app = try await CatalogService.application(
            .init(port: 0, database: url, viewsDirectory: scratchViews(), serviceSecret: TestSecrets.service).forTests, logger: TestDatabase.logger)
        try await app.test(.live) { anonymous in
            let bff = try await anonymous.calling("catalog"), admin = try await anonymous.calling("catalog", as: "shop-admin")
            try await bff.addProduct("MUG-001")
            let first = try await bff.send(.post, "/products/MUG-001/stock", #"{"quantity":2}"#, key: "1")
            let other = try await admin.send(.post, "/products/MUG-001/stock", #"{"quantity":5}"#, key: "1")
            #expect(first.status == .ok && other.status == .ok, "\(String(buffer: other.body))")
            #expect(other.headers[HTTPField.Name("Idempotent-Replayed")!] == nil)
            let reused = try await bff.send(.post, "/products/MUG-001/stock", #"{"quantity":9}"#, key: "1")
            #expect(reused.status == .unprocessableContent && reused.rule == "idempotency-key-reused")
            let replayed = try await admin.send(.post, "/products/MUG-001/stock", #"{"quantity":5}"#, key: "1")
            #expect(replayed.status == .ok && replayed.headers[HTTPField.Name("Idempotent-Replayed")!] == "true")
            #expect((try await bff.object("/products/MUG-001")["stock"] as? [String: Any])?["onHand"] as? Int == 7)
        }
    }
}
