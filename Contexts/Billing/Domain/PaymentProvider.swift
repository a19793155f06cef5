import SharedKernel

/// The payment provider, as Billing needs it: a port. Its adapter is ``HTTPPaymentProvider`` (BillingService), which
/// the shop points at `shop-server payment-provider`, a simulator with test cards.
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
