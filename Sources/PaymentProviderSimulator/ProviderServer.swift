import Foundation
import Hummingbird
import Logging
import ServiceKit

/// The simulator's HTTP API, shaped like a real provider's (every call with an `Idempotency-Key`):
///
/// - `POST /v1/authorisations` `{"order", "amount": {"amount", "currency"}, "card"}`: 200 with
///   `{"outcome": "approved", "id"}` or `{"outcome": "declined", "reason"}`
/// - `POST /v1/authorisations/{id}/capture` and `/refund` `{"amount": {"amount", "currency"}}`, `/void`: 200
///
/// An unavailable provider (the provider-error card, an outage) answers 503 with `Retry-After`; an unknown
/// authorisation 404; a key used for another request 422. Its own controls: `GET /simulator/ledger` (what it did,
/// per order) and `PUT /simulator/outage` with `{"calls": ["capture"]}` (`[]` ends it).
public enum ProviderServer {
    public struct Configuration: Sendable, ConnectionTimeoutConfigurable {
        public var host: String
        public var port: Int
        /// How long a connection may stay idle, or take to send a request, before it is closed.
        public var connectionTimeout: Duration = ShopHTTPServer.idleTimeout

        public init(host: String = "127.0.0.1", port: Int = 8084) {
            self.host = host
            self.port = port
        }
    }

    public struct WireMoney: Codable, Sendable { public let amount: Int64, currency: String }
    struct Authorise: Codable { let order: String, amount: WireMoney, card: String }
    struct Amount: Codable { let amount: WireMoney }
    struct Outage: Codable { let calls: [PaymentProviderSimulator.Call] }

    public static func application(
        _ configuration: Configuration, simulator: PaymentProviderSimulator, logger: Logger
    ) -> some ApplicationProtocol {
        let router = Router()
        router.add(middleware: ProblemMiddleware())
        router.get("/health/live") { _, _ in ["status": "live"] }
        router.get("/health/ready") { _, _ -> [String: String] in
            do { _ = try await simulator.outage() } catch {
                throw Problem(.serviceUnavailable, rule: "not-ready", title: "Not ready", detail: "its file cannot be read", headers: [.retryAfter: "1"])
            }
            return ["status": "ready"]
        }
        router.post("/v1/authorisations") { request, _ -> Response in
            let body = try JSONBody.decode(Authorise.self, from: try await JSONBody.bytes(of: request))
            let answer = try await call {
                try await simulator.authorise(order: body.order, amount: body.amount.amount, currency: body.amount.currency, card: body.card,
                                              key: try key(request))
            }
            switch answer {
            case .approved(let id): return try CommandReply.json(.ok, ["outcome": "approved", "id": id]).response(replayed: false)
            case .declined(let reason): return try CommandReply.json(.ok, ["outcome": "declined", "reason": reason]).response(replayed: false)
            }
        }
        router.post("/v1/authorisations/{id}/capture") { request, context -> Response in
            let amount = try JSONBody.decode(Amount.self, from: try await JSONBody.bytes(of: request)).amount
            let id = try context.parameters.text("id")
            try await call { try await simulator.capture(authorisation: id, amount: amount.amount, key: try key(request)) }
            return try CommandReply.json(.ok, ["outcome": "captured"]).response(replayed: false)
        }
        router.post("/v1/authorisations/{id}/void") { request, context -> Response in
            let id = try context.parameters.text("id")
            try await call { try await simulator.void(authorisation: id, key: try key(request)) }
            return try CommandReply.json(.ok, ["outcome": "voided"]).response(replayed: false)
        }
        router.post("/v1/authorisations/{id}/refund") { request, context -> Response in
            let amount = try JSONBody.decode(Amount.self, from: try await JSONBody.bytes(of: request)).amount
            let id = try context.parameters.text("id")
            try await call { try await simulator.refund(authorisation: id, amount: amount.amount, key: try key(request)) }
            return try CommandReply.json(.ok, ["outcome": "refunded"]).response(replayed: false)
        }
        router.get("/simulator/ledger") { _, _ -> Response in
            try CommandReply.json(.ok, try await simulator.ledger()).response(replayed: false)
        }
        router.put("/simulator/outage") { request, _ -> Response in
            let outage = try JSONBody.decode(Outage.self, from: try await JSONBody.bytes(of: request))
            try await simulator.setOutage(Set(outage.calls))
            return try CommandReply.json(.ok, outage).response(replayed: false)
        }
        return Application(
            router: router,
            server: ShopHTTPServer.http1(idleTimeout: configuration.connectionTimeout, readTimeout: configuration.connectionTimeout),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: "shop-payment-provider"),
            logger: logger)
    }

    private static func key(_ request: Request) throws -> String {
        guard let key = request.headers[.idempotencyKey], (1...300).contains(key.utf8.count) else {
            throw Problem.badRequest("missing-idempotency-key", "every call needs an Idempotency-Key header of 1 to 300 bytes")
        }
        return key
    }

    /// Runs a call of the simulator, its failures as problem documents.
    private static func call<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let failure as PaymentProviderSimulator.Failure {
            switch failure {
            case .unavailable(let reason):
                throw Problem(.serviceUnavailable, rule: "provider-unavailable", title: "The provider is unavailable", detail: reason,
                              headers: [.retryAfter: "1"])
            case .unknownAuthorisation: throw Problem.notFound(failure.description)
            case .keyReused: throw Problem.ruleBroken("idempotency-key-reused", failure.description)
            case .invalid(let reason): throw Problem.badRequest("invalid-request", reason)
            }
        }
    }
}
