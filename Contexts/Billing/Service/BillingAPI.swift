import Billing
import Contracts
import EventStore
import Foundation
import Hummingbird
import ServiceKit
import ServiceRuntime
import SharedKernel

/// Billing's HTTP API: one payment per order, through the payment provider.
///
/// The provider is called before the database transaction (a transaction is never held open across a
/// remote call), with an idempotency key derived from the request's, so a retried request gets the
/// provider's first answer and nobody is charged twice; the answer is then recorded as events.
struct BillingAPI: Sendable {
    let store: EventStore
    let provider: any PaymentProvider
    let providerDeadline: Duration
    let payments: CommandHandler<Payment>
    let commands: CommandRunner

    init(store: EventStore, provider: any PaymentProvider, providerDeadline: Duration) {
        self.store = store
        self.provider = provider
        self.providerDeadline = providerDeadline
        self.payments = CommandHandler(store: store, codec: BillingEvents.payment)
        self.commands = CommandRunner(store: store)
    }

    struct Authorise: Codable { let amount: MoneyBody, card: String }
    struct Amount: Codable { let amount: MoneyBody }

    struct PaymentView: Encodable {
        let order: String, status: PaymentStatus, authorised: Money?, captured: Money?, refunded: Money?
        let declines: [String], version: Int64
    }

    func addRoutes(to router: Router<some RequestContext>) {
        router.get("/payments/{order}") { _, context in try await payment(try context.parameters.text("order")) }
        router.post("/payments/{order}/authorise") { request, context in
            try await authorise(request, try context.parameters.text("order"))
        }
        router.post("/payments/{order}/capture") { request, context in
            let order = try context.parameters.text("order")
            let bytes = try await JSONBody.bytes(of: request)
            let amount = try JSONBody.decode(Amount.self, from: bytes).amount.money()
            return try await providerCommand(request, bytes, order, .capture(order: order, amount: amount)) { authorisation, key in
                try await provider.capture(authorisation: authorisation, amount: amount, idempotencyKey: key)
            }
        }
        router.post("/payments/{order}/void") { request, context in
            let order = try context.parameters.text("order")
            return try await providerCommand(request, nil, order, .void(order: order)) { authorisation, key in
                try await provider.void(authorisation: authorisation, idempotencyKey: key)
            }
        }
        router.post("/payments/{order}/refund") { request, context in
            let order = try context.parameters.text("order")
            let bytes = try await JSONBody.bytes(of: request)
            let amount = try JSONBody.decode(Amount.self, from: bytes).amount.money()
            return try await providerCommand(request, bytes, order, .refund(order: order, amount: amount)) { authorisation, key in
                try await provider.refund(authorisation: authorisation, amount: amount, idempotencyKey: key)
            }
        }
    }

    private func authorise(_ request: Request, _ order: String) async throws -> Response {
        let bytes = try await JSONBody.bytes(of: request)
        let body = try JSONBody.decode(Authorise.self, from: bytes)
        let amount = try body.amount.money()
        let stream = try paymentStream(order)
        let key = try providerKey(request, "authorise")
        return try await commands.exclusively(request) {
            // A repeat is answered as the first request was; else refuse early, without calling the provider, what the
            // payment would refuse anyway. Both looked up at once, on two connections.
            async let replay = commands.replay(request, body: bytes)
            async let current = payments.load(stream)
            if let replayed = try await replay { return replayed }
            let (state, _) = try await current
            do {
                _ = try Payment.decide(.recordAuthorisation(order: order, authorisation: "check", amount: amount), state)
            } catch {
                // Another instance may have handled this very request since the first look: its reply is the answer.
                if let replayed = try await commands.replay(request, body: bytes) { return replayed }
                throw error
            }
            return try await authorise(request, bytes, order, amount: amount, card: body.card, stream: stream, providerKey: key)
        }
    }

    private func authorise(
        _ request: Request, _ bytes: Data, _ order: String, amount: Money, card: String, stream: StreamName, providerKey key: String
    ) async throws -> Response {
        let answer = try await callingProvider {
            try await provider.authorise(AuthorisationRequest(order: order, amount: amount, cardNumber: card, idempotencyKey: key))
        }
        let command: Payment.Command
        switch answer {
        case .approved(let id): command = .recordAuthorisation(order: order, authorisation: id, amount: amount)
        case .declined(let reason): command = .recordDecline(order: order, amount: amount, reason: reason)
        }
        return try await record(request, bytes, stream, command, status: .created)
    }

    /// Capture, void, refund: check the payment allows it, ask the provider, record.
    private func providerCommand(
        _ request: Request, _ bytes: Data?, _ order: String, _ command: Payment.Command,
        _ call: @escaping @Sendable (String, String) async throws -> Void
    ) async throws -> Response {
        let stream = try paymentStream(order)
        return try await commands.exclusively(request) {
            if let replayed = try await commands.replay(request, body: bytes) { return replayed }
            let (state, _) = try await payments.load(stream)
            let events: [Payment.Event]
            do {
                events = try Payment.decide(command, state)
            } catch {
                if let replayed = try await commands.replay(request, body: bytes) { return replayed }
                throw error
            }
            if !events.isEmpty, let authorisation = state.authorisation {
                let key = try providerKey(request, "\(command)")
                try await callingProvider { try await call(authorisation, key) }
            }
            return try await record(request, bytes, stream, command, status: .ok)
        }
    }

    private func record(_ request: Request, _ bytes: Data?, _ stream: StreamName, _ command: Payment.Command,
                        status: HTTPResponse.Status) async throws -> Response {
        try await commands.run(request, body: bytes) { transaction in
            let result = try await payments.handle(command, on: stream, in: transaction)
            return try .json(status, view(command.order, result.state, result.streamVersion), etag: ETag.make(result.streamVersion))
        }
    }

    /// The provider's idempotency key: the request's key, scoped to this order and action.
    private func providerKey(_ request: Request, _ action: String) throws -> String {
        guard let key = request.headers[.idempotencyKey] else {
            throw Problem.badRequest("missing-idempotency-key", "commands need an Idempotency-Key header (a unique string per intended action)")
        }
        return "\(request.uri.path)|\(action.prefix(40))|\(key)"
    }

    /// Calls the provider within the deadline; a provider that fails or is too slow is a 503, nothing recorded.
    private func callingProvider<T: Sendable>(_ call: @escaping @Sendable () async throws -> T) async throws -> T {
        let deadline = providerDeadline
        do {
            return try await withThrowingTaskGroup(of: T?.self) { group in
                group.addTask { try await call() }
                group.addTask {
                    try await Task.sleep(for: deadline)
                    return nil
                }
                defer { group.cancelAll() }
                guard let first = try await group.next(), let result = first else {
                    throw Problem(.gatewayTimeout, rule: "provider-timeout", title: "The payment provider did not answer in time",
                                  detail: "nothing was charged or recorded; retry with the same Idempotency-Key", headers: [.retryAfter: "1"])
                }
                return result
            }
        } catch let error as PaymentProviderError {
            throw Problem(.serviceUnavailable, rule: "provider-unavailable", title: "The payment provider is unavailable",
                          detail: "\(error); nothing was recorded; retry with the same Idempotency-Key", headers: [.retryAfter: "1"])
        }
    }

    private func paymentStream(_ order: String) throws -> StreamName {
        do { return try BillingStreams.payment(order) } catch { throw Problem.notFound("there is no payment '\(order.prefix(40))'") }
    }

    private func view(_ order: String, _ state: Payment.State, _ version: Int64) -> PaymentView {
        let status: PaymentStatus = state.isVoided ? .voided
            : state.refunded != nil ? .refunded
            : state.captured != nil ? .captured
            : state.authorised != nil ? .authorised
            : state.declines.isEmpty ? .none : .declined
        return PaymentView(order: order, status: status, authorised: state.authorised, captured: state.captured,
                           refunded: state.refunded, declines: state.declines, version: version)
    }

    private func payment(_ order: String) async throws -> Response {
        let (state, version) = try await payments.load(try paymentStream(order))
        guard version > 0 else { throw Problem.notFound("there is no payment for order \(order)") }
        return try CommandReply.json(.ok, view(order, state, version), etag: ETag.make(version)).response(replayed: false)
    }
}

extension BillingError: ProblemConvertible {
    /// Every Billing refusal is a broken rule (422) naming it.
    public var problem: Problem { .ruleBroken(rule, description) }
}
