import SharedKernel

/// Every rule of the Billing context that a command can break.
public enum BillingError: Error, Hashable, CustomStringConvertible {
    case invalidMoney(MoneyError)
    case invalidAmount
    case invalidReference(String)
    case alreadyAuthorised(order: String)
    case notAuthorised(order: String)
    case alreadyVoided(order: String)
    case alreadyCaptured(order: String)
    case exceedsAuthorised(requested: Money, remaining: Money)
    case exceedsCaptured(requested: Money, remaining: Money)

    public var rule: String {
        switch self {
        case .invalidMoney: "invalid-money"
        case .invalidAmount: "invalid-amount"
        case .invalidReference: "invalid-reference"
        case .alreadyAuthorised: "already-authorised"
        case .notAuthorised: "not-authorised"
        case .alreadyVoided: "already-voided"
        case .alreadyCaptured: "already-captured"
        case .exceedsAuthorised: "exceeds-authorised"
        case .exceedsCaptured: "exceeds-captured"
        }
    }

    public var description: String {
        switch self {
        case .invalidMoney(let error): "\(error)"
        case .invalidAmount: "an amount must be more than zero"
        case .invalidReference(let text): "'\(text.prefix(80))' is not a valid id: 1 to 64 characters"
        case .alreadyAuthorised(let order): "the payment of order \(order) is already authorised"
        case .notAuthorised(let order): "the payment of order \(order) is not authorised"
        case .alreadyVoided(let order): "the payment of order \(order) was voided"
        case .alreadyCaptured(let order): "the payment of order \(order) is already captured: refund it instead"
        case .exceedsAuthorised(let requested, let remaining): "cannot capture \(requested): only \(remaining) of the authorisation is left"
        case .exceedsCaptured(let requested, let remaining): "cannot refund \(requested): only \(remaining) of the captured amount is left"
        }
    }
}
