import SharedKernel
import Synchronization

/// The payment provider, as Billing needs it: a port, with the simulator below as the shipped adapter.
///
/// Every call carries an idempotency key: a provider answers a repeated key with its first answer and never
/// charges twice, which is what makes retrying a timed-out call safe.
public protocol PaymentProvider: Sendable {
    func authorise(_ request: AuthorisationRequest) async throws(PaymentProviderError) -> Authorisation
    func capture(authorisation: String, amount: Money, idempotencyKey: String) async throws(PaymentProviderError)
    func void(authorisation: String, idempotencyKey: String) async throws(PaymentProviderError)
    func refund(authorisation: String, amount: Money, idempotencyKey: String) async throws(PaymentProviderError)
}

public struct AuthorisationRequest: Sendable, Hashable {
    public let order: String
    public let amount: Money
    public let cardNumber: String
    public let idempotencyKey: String

    public init(order: String, amount: Money, cardNumber: String, idempotencyKey: String) {
        self.order = order
        self.amount = amount
        self.cardNumber = cardNumber
        self.idempotencyKey = idempotencyKey
    }
}

public enum Authorisation: Sendable, Hashable {
    case approved(id: String)
    case declined(reason: String)
}

/// The provider could not answer: worth retrying (with the same idempotency key).
public enum PaymentProviderError: Error, Hashable, CustomStringConvertible {
    case unavailable(String)
    case unknownAuthorisation(String)

    public var description: String {
        switch self {
        case .unavailable(let reason): "the payment provider is unavailable: \(reason)"
        case .unknownAuthorisation(let id): "the payment provider knows no authorisation \(id)"
        }
    }
}

/// A payment provider with deterministic behaviour by test card number, like the test cards real providers
/// publish. It remembers what it did, so tests can count authorisations and captures per order.
///
/// | card number | behaviour |
/// | --- | --- |
/// | 4242 4242 4242 4242 | approved |
/// | 4000 0000 0000 0002 | declined: card declined |
/// | 4000 0000 0000 9995 | declined: insufficient funds |
/// | 4000 0000 0000 0101 | answers only after ``slowDelay`` (longer than any caller's deadline) |
/// | 4000 0000 0000 0119 | fails: provider error (retryable) |
/// | any other number | declined: unknown test card |
public final class PaymentProviderSimulator: PaymentProvider {
    public static let approve = "4242424242424242"
    public static let decline = "4000000000000002"
    public static let insufficientFunds = "4000000000009995"
    public static let slow = "4000000000000101"
    public static let providerError = "4000000000000119"

    public struct Ledger: Sendable, Equatable {
        /// Authorisations granted, per order (a repeated idempotency key is not counted again).
        public var authorisations: [String: Int] = [:]
        public var captures: [String: Int] = [:]
        public var voids: [String: Int] = [:]
        public var refunds: [String: Int] = [:]
    }

    private struct State {
        var ledger = Ledger()
        var answers: [String: Authorisation] = [:]
        var orderOfAuthorisation: [String: String] = [:]
        var done: Set<String> = []
        var nextID = 1
    }

    private let state = Mutex(State())
    private let outages = Mutex<Set<Call>>([])
    public let slowDelay: Duration

    /// What a caller can ask of the provider; each can be made to fail for a while (``setOutage(_:)``).
    public enum Call: String, Sendable, CaseIterable, Codable { case authorise, capture, void, refund }

    /// Makes these calls fail as an unavailable provider does (retryable), until called again without them:
    /// for showing and testing what the saga does when its payment provider is down.
    public func setOutage(_ calls: Set<Call>) { outages.withLock { $0 = calls } }

    private func checkAvailable(_ call: Call) throws(PaymentProviderError) {
        if outages.withLock({ $0.contains(call) }) { throw .unavailable("simulated outage of \(call.rawValue)") }
    }

    public init(slowDelay: Duration = .seconds(30)) {
        self.slowDelay = slowDelay
    }

    public var ledger: Ledger { state.withLock { $0.ledger } }

    public func authorise(_ request: AuthorisationRequest) async throws(PaymentProviderError) -> Authorisation {
        try checkAvailable(.authorise)
        let card = request.cardNumber.filter { $0 != " " }
        switch card {
        case Self.providerError:
            throw .unavailable("simulated provider error")
        case Self.slow:
            do { try await Task.sleep(for: slowDelay) } catch { throw .unavailable("cancelled") }
        default:
            break
        }
        return state.withLock { state in
            if let answer = state.answers[request.idempotencyKey] { return answer }
            let answer: Authorisation
            switch card {
            case Self.approve, Self.slow:
                answer = .approved(id: "auth-\(state.nextID)")
                state.nextID += 1
            case Self.decline: answer = .declined(reason: "card declined")
            case Self.insufficientFunds: answer = .declined(reason: "insufficient funds")
            default: answer = .declined(reason: "unknown test card")
            }
            if case .approved(let id) = answer {
                state.ledger.authorisations[request.order, default: 0] += 1
                state.orderOfAuthorisation[id] = request.order
            }
            state.answers[request.idempotencyKey] = answer
            return answer
        }
    }

    public func capture(authorisation: String, amount: Money, idempotencyKey: String) async throws(PaymentProviderError) {
        try checkAvailable(.capture)
        try record(authorisation, idempotencyKey) { $0.captures[$1, default: 0] += 1 }
    }

    public func void(authorisation: String, idempotencyKey: String) async throws(PaymentProviderError) {
        try checkAvailable(.void)
        try record(authorisation, idempotencyKey) { $0.voids[$1, default: 0] += 1 }
    }

    public func refund(authorisation: String, amount: Money, idempotencyKey: String) async throws(PaymentProviderError) {
        try checkAvailable(.refund)
        try record(authorisation, idempotencyKey) { $0.refunds[$1, default: 0] += 1 }
    }

    private func record(_ authorisation: String, _ key: String, _ count: (inout Ledger, String) -> Void) throws(PaymentProviderError) {
        let known = state.withLock { state -> Bool in
            guard let order = state.orderOfAuthorisation[authorisation] else { return false }
            if state.done.insert(key).inserted { count(&state.ledger, order) }
            return true
        }
        guard known else { throw .unknownAuthorisation(authorisation) }
    }
}
