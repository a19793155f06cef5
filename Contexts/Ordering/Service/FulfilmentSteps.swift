import AsyncHTTPClient
import Contracts
import Essentials
import EventStore
import Telemetry
import Tracing
import Foundation
import Identity
import NIOCore
import NIOHTTP1
import Ordering
import ServiceKit

/// Performs the saga's steps: HTTP commands to Catalog and Billing through their published contracts, each
/// with an idempotency key made of the saga and the step (`fulfilment:<order>:<step>`), so a retry, a
/// duplicate or a restart never reserves, authorises or captures twice. Each step has a deadline.
///
/// An answer is sorted into a ``Fulfilment/Result``: 2xx succeeded; a 422 where the saga expects a business
/// refusal (no stock, a declined card) refused; a timeout, a refused connection, 409 (a concurrent write, or the
/// same request still in progress), 429 or 5xx failed (retry);
/// any other answer broken (park).
public struct FulfilmentSteps: Sendable {
    public struct Deadlines: Sendable, Equatable {
        public var stock: Duration
        /// Longer than Billing's own deadline for the provider, so Billing always answers first.
        public var payment: Duration

        public init(stock: Duration = .seconds(3), payment: Duration = .seconds(8)) {
            self.stock = stock
            self.payment = payment
        }
    }

    let catalogURL: String
    let billingURL: String
    let deadlines: Deadlines
    /// Signs the steps' service tokens.
    let identity: ServiceIdentity?

    public init(catalogURL: String, billingURL: String, deadlines: Deadlines = .init(), identity: ServiceIdentity?) {
        self.catalogURL = catalogURL.hasSuffix("/") ? String(catalogURL.dropLast()) : catalogURL
        self.billingURL = billingURL.hasSuffix("/") ? String(billingURL.dropLast()) : billingURL
        self.deadlines = deadlines
        self.identity = identity
    }

    public func perform(_ step: Fulfilment.Step, for state: Fulfilment.State) async -> Fulfilment.Result {
        do {
            return try await attempt(step, state)
        } catch let answer as Answer {
            return answer.result
        } catch {
            return .failed("\(step.service) did not answer: \(Self.describe(error))")
        }
    }

    private func attempt(_ step: Fulfilment.Step, _ state: Fulfilment.State) async throws -> Fulfilment.Result {
        let order = state.order
        let key = "fulfilment:\(order):\(step)"
        switch step {
        case .reserveStock:
            let body = CatalogCommands.Reserve(order: order, lines: state.lines.map { .init(sku: $0.sku, quantity: $0.quantity) })
            let answer = try await send(.POST, catalogURL + CatalogRoutes.reservations, body, key: key, deadline: deadlines.stock, step)
            if answer.status == 422 { return .refused(answer.detail ?? "the stock could not be reserved") }
            return try answer.success()

        case .commitStock:
            for line in state.lines {
                let path = CatalogRoutes.commit(sku: line.sku, order: order)
                _ = try await send(.POST, catalogURL + path, nil as String?, key: "\(key):\(line.sku)", deadline: deadlines.stock, step).success()
            }
            return .succeeded

        case .releaseStock:
            for line in state.lines {
                let release = try await send(.POST, catalogURL + CatalogRoutes.release(sku: line.sku, order: order), nil as String?,
                                             key: "\(key):\(line.sku)", deadline: deadlines.stock, step)
                if release.rule == "reservation-already-committed" {
                    // The units left with the order: they come back.
                    _ = try await send(.POST, catalogURL + CatalogRoutes.stock(line.sku), CatalogCommands.Receive(quantity: line.quantity),
                                       key: "\(key):\(line.sku):return", deadline: deadlines.stock, step).success()
                } else {
                    _ = try release.success()
                }
            }
            return .succeeded

        case .authorisePayment:
            let body = BillingCommands.Authorise(amount: state.total, card: state.card)
            let answer = try await send(.POST, billingURL + BillingRoutes.authorise(order), body, key: key, deadline: deadlines.payment, step)
            _ = try answer.success()
            let payment = try JSONDecoder().decode(BillingCommands.Payment.self, from: answer.body)
            guard payment.authorised == nil else { return .succeeded }
            return .refused("payment declined: \(payment.declines.last ?? "declined")")

        case .capturePayment:
            let body = BillingCommands.Amount(amount: state.total)
            return try await send(.POST, billingURL + BillingRoutes.capture(order), body, key: key, deadline: deadlines.payment, step).success()

        case .cancelPayment:
            // What Billing holds decides: void an authorisation, refund a capture, nothing for a decline.
            let current = try await send(.GET, billingURL + BillingRoutes.payment(order), nil as String?, key: nil, deadline: deadlines.payment, step)
            if current.status == 404 { return .succeeded }
            _ = try current.success()
            let payment = try JSONDecoder().decode(BillingCommands.Payment.self, from: current.body)
            if let captured = payment.captured {
                let refunded = payment.refunded ?? .zero(captured.currency)
                guard refunded < captured, let left = try? captured.subtracting(refunded) else { return .succeeded }
                return try await send(.POST, billingURL + BillingRoutes.refund(order), BillingCommands.Amount(amount: left),
                                      key: key + ":refund", deadline: deadlines.payment, step).success()
            }
            guard payment.authorised != nil, payment.status != .voided else { return .succeeded }
            return try await send(.POST, billingURL + BillingRoutes.void(order), nil as String?, key: key + ":void",
                                  deadline: deadlines.payment, step).success()
        }
    }

    // MARK: HTTP

    struct Answer: Error {
        let status: Int, body: Data, step: Fulfilment.Step

        var problem: [String: Any] { (try? JSONSerialization.jsonObject(with: body) as? [String: Any]) ?? [:] }
        var rule: String? { problem["rule"] as? String }
        var detail: String? { problem["detail"] as? String ?? problem["title"] as? String }

        /// A 2xx is success; anything else is thrown as what it means for the saga.
        func success() throws -> Fulfilment.Result {
            guard (200..<300).contains(status) else { throw self }
            return .succeeded
        }

        var result: Fulfilment.Result {
            let what = "\(step.service) answered \(status)\(rule.map { " \($0)" } ?? "")\(detail.map { ": \($0)" } ?? "")"
            return status == 409 || status == 429 || status >= 500 ? .failed(what) : .broken(what)
        }
    }

    private func send<Body: Encodable>(
        _ method: HTTPMethod, _ url: String, _ body: Body?, key: String?, deadline: Duration, _ step: Fulfilment.Step
    ) async throws -> Answer {
        var request = HTTPClientRequest(url: url)
        request.method = method
        if let key { request.headers.add(name: "Idempotency-Key", value: key) }
        if let identity { request.headers.add(name: "Authorization", value: try await identity.authorization(to: step.service.lowercased())) }
        if let correlation = EventMetadata.current?.correlationID { request.headers.add(name: "X-Correlation-Id", value: correlation) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            // Sorted keys: a retry's body must be byte for byte the first one's, in this process or the next (the
            // other side fingerprints it with the idempotency key, and a key order may follow a process's hash seed).
            request.body = .bytes(ByteBuffer(data: try JSONEncoder.sortedKeys.encode(body)))
        }
        // A client span of the saga step's; the service continues it.
        return try await withSpan("\(method) \(step.service.lowercased())", ofKind: .client) { span in
            if let trace = span.context.traceContext ?? ServiceContext.current?.traceContext {
                request.headers.replaceOrAdd(name: "traceparent", value: trace.traceparent)
            }
            let response = try await HTTPClient.shared.execute(request, timeout: .nanoseconds(Int64(deadline.components.seconds) * 1_000_000_000
                                                                                                  + deadline.components.attoseconds / 1_000_000_000))
            let bytes = try await response.body.collect(upTo: 1024 * 1024)
            span.attributes["http.response.status_code"] = Int(response.status.code)
            return Answer(status: Int(response.status.code), body: Data(buffer: bytes), step: step)
        }
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? HTTPClientError {
            switch error {
            case .deadlineExceeded, .readTimeout, .connectTimeout: return "no answer within the step's deadline"
            default: return "\(error)"
            }
        }
        return "\(error)"
    }
}

extension Fulfilment.Step {
    /// The context the step talks to.
    var service: String {
        switch self {
        case .reserveStock, .commitStock, .releaseStock: "Catalog"
        case .authorisePayment, .capturePayment, .cancelPayment: "Billing"
        }
    }
}
