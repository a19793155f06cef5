import AsyncHTTPClient
import Billing
import Foundation
import NIOCore
import NIOHTTP1
import SharedKernel

/// The payment provider over HTTP, as Billing would reach a real one (`shop-server payment-provider` here): each
/// call carries Billing's idempotency key, and a call that gets no answer (its outcome unknown) is sent again with
/// the same key until it gets one, or the caller's deadline cancels it. An answer that says the provider is
/// unavailable (a 5xx) is final for this request: Billing answers 503, and its caller retries later.
public struct HTTPPaymentProvider: PaymentProvider {
    let baseURL: String
    let client: HTTPClient

    public init(baseURL: String, client: HTTPClient = .shared) {
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.client = client
    }

    struct Wire: Encodable { let amount: Int64, currency: String }
    struct AuthoriseBody: Encodable { let order: String, amount: Wire, card: String }
    struct AmountBody: Encodable { let amount: Wire }
    struct Outcome: Decodable { let outcome: String, id: String?, reason: String? }
    struct Empty: Encodable {}
    struct Problem: Decodable { let detail: String? }

    public func authorise(_ request: AuthorisationRequest) async throws(PaymentProviderError) -> Authorisation {
        let body = AuthoriseBody(order: request.order, amount: Self.wire(request.amount), card: request.cardNumber)
        let outcome = try await send("/v1/authorisations", body, key: request.idempotencyKey)
        switch (outcome.outcome, outcome.id, outcome.reason) {
        case ("approved", let id?, _): return .approved(id: id)
        case ("declined", _, let reason?): return .declined(reason: reason)
        default: throw .unavailable("the provider answered an outcome '\(outcome.outcome.prefix(40))'")
        }
    }

    public func capture(authorisation: String, amount: Money, idempotencyKey: String) async throws(PaymentProviderError) {
        _ = try await send(Self.path(authorisation, "capture"), AmountBody(amount: Self.wire(amount)), key: idempotencyKey, authorisation)
    }

    public func void(authorisation: String, idempotencyKey: String) async throws(PaymentProviderError) {
        _ = try await send(Self.path(authorisation, "void"), Empty(), key: idempotencyKey, authorisation)
    }

    public func refund(authorisation: String, amount: Money, idempotencyKey: String) async throws(PaymentProviderError) {
        _ = try await send(Self.path(authorisation, "refund"), AmountBody(amount: Self.wire(amount)), key: idempotencyKey, authorisation)
    }

    static func wire(_ money: Money) -> Wire { Wire(amount: money.minorUnits, currency: money.currency.code) }

    static func path(_ authorisation: String, _ action: String) -> String {
        var allowed = CharacterSet.urlPathAllowed
        allowed.remove(charactersIn: "/;?#%&=+")
        return "/v1/authorisations/\(authorisation.addingPercentEncoding(withAllowedCharacters: allowed) ?? authorisation)/\(action)"
    }

    /// Posts `body` with the key until the provider answers: 100 ms after the first failure to reach it, doubling up
    /// to a second. Only cancellation (the caller's deadline) ends the retries.
    private func send(_ path: String, _ body: some Encodable, key: String, _ authorisation: String? = nil) async throws(PaymentProviderError) -> Outcome {
        var pause = Duration.milliseconds(100)
        var lastFailure = "no answer"
        while !Task.isCancelled {
            do {
                var request = HTTPClientRequest(url: baseURL + path)
                request.method = .POST
                request.headers.add(name: "Content-Type", value: "application/json")
                request.headers.add(name: "Idempotency-Key", value: key)
                request.body = .bytes(ByteBuffer(data: try JSONEncoder().encode(body)))
                let response = try await client.execute(request, timeout: .seconds(30))
                let bytes = try await response.body.collect(upTo: 64 * 1024)
                switch response.status.code {
                case 200..<300:
                    return try JSONDecoder().decode(Outcome.self, from: Data(buffer: bytes))
                case 404 where authorisation != nil:
                    throw PaymentProviderError.unknownAuthorisation(authorisation!)
                case 500...:
                    let detail = (try? JSONDecoder().decode(Problem.self, from: Data(buffer: bytes)))?.detail
                    throw PaymentProviderError.unavailable(detail ?? "it answered \(response.status.code)")
                default:
                    // A 4xx is a fault of Billing's request: retrying it would not help.
                    throw PaymentProviderError.unavailable("it refused the call with \(response.status.code): \(String(buffer: bytes).prefix(200))")
                }
            } catch let error as PaymentProviderError {
                throw error
            } catch {
                lastFailure = "\(error)"
            }
            do { try await Task.sleep(for: pause) } catch { break }
            pause = min(pause * 2, .seconds(1))
        }
        throw .unavailable(lastFailure)
    }
}
