import AsyncHTTPClient
import Contracts
import Essentials
import EventStore
import Telemetry
import Tracing
import Foundation
import Identity
import Logging
import NIOCore
import NIOHTTP1
import Ordering
import ServiceClient
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

    /// Catalog and Billing as the saga calls them: each instance found through DNS and health-checked, calls balanced
    /// over the healthy ones (one that fails is tried once on another: every call of the saga may be repeated); each
    /// call's timeout is its step's deadline. Run them (``downstreams``) beside the orchestrator. No circuit breaker:
    /// the saga has its own retries with backoff, and parks; and a 503 from Billing may only mean that the provider
    /// behind it is down, which must not stop the captures that are due once it is back.
    let catalog: Downstream
    let billing: Downstream
    let deadlines: Deadlines

    public init(catalogURL: String, billingURL: String, deadlines: Deadlines = .init(), identity: ServiceIdentity?,
                logger: Logger = Logger(label: "fulfilment-steps")) {
        self.catalog = Downstream(.init(name: "catalog", instances: [catalogURL], timeout: deadlines.stock, failureThreshold: .max),
                                  identity: identity, logger: logger)
        self.billing = Downstream(.init(name: "billing", instances: [billingURL], timeout: deadlines.payment, failureThreshold: .max),
                                  identity: identity, logger: logger)
        self.deadlines = deadlines
    }

    /// The downstreams' health checks, to run as services of the process (they also close their HTTP clients).
    public var downstreams: [Downstream] { [catalog, billing] }

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
            let answer = try await send(.POST, catalog, CatalogRoutes.reservations, body, key: key, step)
            if answer.status == 422 { return .refused(answer.detail ?? "the stock could not be reserved") }
            return try answer.success()

        case .commitStock:
            for line in state.lines {
                let path = CatalogRoutes.commit(sku: line.sku, order: order)
                _ = try await send(.POST, catalog, path, nil as String?, key: "\(key):\(line.sku)", step).success()
            }
            return .succeeded

        case .releaseStock:
            for line in state.lines {
                // Units known to have left with the order come back as received stock (Catalog remembers only its latest
                // commits); otherwise its reservation is released, or returned if Catalog says it was committed after all.
                if state.done.contains(.commitStock) {
                    _ = try await send(.POST, catalog, CatalogRoutes.stock(line.sku), CatalogCommands.Receive(quantity: line.quantity),
                                       key: "\(key):\(line.sku):return", step).success()
                    continue
                }
                let release = try await send(.POST, catalog, CatalogRoutes.release(sku: line.sku, order: order), nil as String?,
                                             key: "\(key):\(line.sku)", step)
                if release.rule == "reservation-already-committed" {
                    // The units left with the order: they come back.
                    _ = try await send(.POST, catalog, CatalogRoutes.stock(line.sku), CatalogCommands.Receive(quantity: line.quantity),
                                       key: "\(key):\(line.sku):return", step).success()
                } else {
                    _ = try release.success()
                }
            }
            return .succeeded

        case .authorisePayment:
            let body = BillingCommands.Authorise(amount: state.total, card: state.card)
            let answer = try await send(.POST, billing, BillingRoutes.authorise(order), body, key: key, step)
            _ = try answer.success()
            let payment = try JSONDecoder().decode(BillingCommands.Payment.self, from: answer.body)
            guard payment.authorised == nil else { return .succeeded }
            return .refused("payment declined: \(payment.declines.last ?? "declined")")

        case .capturePayment:
            let body = BillingCommands.Amount(amount: state.total)
            return try await send(.POST, billing, BillingRoutes.capture(order), body, key: key, step).success()

        case .cancelPayment:
            // What Billing holds decides: void an authorisation, refund a capture, nothing for a decline.
            let current = try await send(.GET, billing, BillingRoutes.payment(order), nil as String?, key: nil, step)
            if current.status == 404 { return .succeeded }
            _ = try current.success()
            let payment = try JSONDecoder().decode(BillingCommands.Payment.self, from: current.body)
            if let captured = payment.captured {
                let refunded = payment.refunded ?? .zero(captured.currency)
                guard refunded < captured, let left = try? captured.subtracting(refunded) else { return .succeeded }
                return try await send(.POST, billing, BillingRoutes.refund(order), BillingCommands.Amount(amount: left),
                                      key: key + ":refund", step).success()
            }
            guard payment.authorised != nil, payment.status != .voided else { return .succeeded }
            return try await send(.POST, billing, BillingRoutes.void(order), nil as String?, key: key + ":void", step).success()
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
        _ method: HTTPMethod, _ service: Downstream, _ path: String, _ body: Body?, key: String?, _ step: Fulfilment.Step
    ) async throws -> Answer {
        var headers = HTTPHeaders()
        if let key { headers.add(name: "Idempotency-Key", value: key) }
        if let correlation = EventMetadata.current?.correlationID { headers.add(name: "X-Correlation-Id", value: correlation) }
        var bytes: ByteBuffer?
        if let body {
            headers.add(name: "Content-Type", value: "application/json")
            // Sorted keys: a retry's body must be byte for byte the first one's, in this process or the next (the
            // other side fingerprints it with the idempotency key, and a key order may follow a process's hash seed).
            bytes = ByteBuffer(data: try JSONEncoder.sortedKeys.encode(body))
        }
        // A client span of the saga step's; the service continues it.
        return try await withSpan("\(method) \(step.service.lowercased())", ofKind: .client) { span in
            if let trace = span.context.traceContext ?? ServiceContext.current?.traceContext {
                headers.replaceOrAdd(name: "traceparent", value: trace.traceparent)
            }
            let response = try await service.send(.init(method: method, path: path, headers: headers, body: bytes))
            span.attributes["http.response.status_code"] = Int(response.status.code)
            return Answer(status: Int(response.status.code), body: Data(buffer: response.body), step: step)
        }
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? Downstream.Failure { return error.description }
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
