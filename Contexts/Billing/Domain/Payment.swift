import EventSourcing
import SharedKernel

/// The payment of one order: authorised through the payment provider (or declined, with the provider's
/// reason), then captured (never more than authorised) or voided; captured money can be refunded (never
/// more than captured). One stream per order: `payment-<order id>`.
///
/// The provider is called by the Billing service, not here: `decide` records what the provider answered.
public enum Payment: Decider {
    public enum Command: Sendable, Equatable {
        case recordAuthorisation(order: String, authorisation: String, amount: Money)
        case recordDecline(order: String, amount: Money, reason: String)
        case capture(order: String, amount: Money)
        case void(order: String)
        case refund(order: String, amount: Money)

        public var order: String {
            switch self {
            case .recordAuthorisation(let order, _, _), .recordDecline(let order, _, _), .capture(let order, _),
                 .void(let order), .refund(let order, _): order
            }
        }
    }

    public enum Event: Sendable, Equatable {
        case authorised(PaymentAuthorised)
        case declined(PaymentDeclined)
        case captured(PaymentCaptured)
        case voided(PaymentVoided)
        case refunded(PaymentRefunded)
    }

    public struct PaymentAuthorised: Codable, Sendable, Equatable {
        public let order: String, authorisation: String, amount: Money
        public init(order: String, authorisation: String, amount: Money) { self.order = order; self.authorisation = authorisation; self.amount = amount }
    }
    public struct PaymentDeclined: Codable, Sendable, Equatable {
        public let order: String, amount: Money, reason: String
        public init(order: String, amount: Money, reason: String) { self.order = order; self.amount = amount; self.reason = reason }
    }
    public struct PaymentCaptured: Codable, Sendable, Equatable {
        public let order: String, amount: Money
        public init(order: String, amount: Money) { self.order = order; self.amount = amount }
    }
    public struct PaymentVoided: Codable, Sendable, Equatable {
        public let order: String
        public init(order: String) { self.order = order }
    }
    public struct PaymentRefunded: Codable, Sendable, Equatable {
        public let order: String, amount: Money
        public init(order: String, amount: Money) { self.order = order; self.amount = amount }
    }

    public struct State: Sendable, Equatable {
        public var authorisation: String?
        public var authorised: Money?
        public var captured: Money?
        public var refunded: Money?
        public var isVoided = false
        public var declines: [String] = []
    }

    public static let initialState = State()

    public static func decide(_ command: Command, _ state: State) throws(BillingError) -> [Event] {
        let order = try valid(reference: command.order)
        switch command {
        case .recordAuthorisation(_, let authorisation, let amount):
            let authorisation = try valid(reference: authorisation)
            if let existing = state.authorisation {
                if existing == authorisation && state.authorised == amount { return [] }
                throw .alreadyAuthorised(order: order)
            }
            return [.authorised(PaymentAuthorised(order: order, authorisation: authorisation, amount: try positive(amount)))]

        case .recordDecline(_, let amount, let reason):
            guard state.authorisation == nil else { throw .alreadyAuthorised(order: order) }
            let reason = reason.trimmingWhitespace.isEmpty ? "declined" : String(reason.trimmingWhitespace.prefix(200))
            return [.declined(PaymentDeclined(order: order, amount: try positive(amount), reason: reason))]

        case .capture(_, let amount):
            let authorised = try usableAuthorisation(order, state)
            let amount = try positive(amount)
            let remaining: Money
            do {
                remaining = try authorised.subtracting(state.captured ?? .zero(authorised.currency))
                try remaining.checkCurrency(amount)
            } catch {
                throw .invalidMoney(error)
            }
            guard amount <= remaining else { throw .exceedsAuthorised(requested: amount, remaining: remaining) }
            return [.captured(PaymentCaptured(order: order, amount: amount))]

        case .void:
            if state.isVoided { return [] }
            _ = try usableAuthorisation(order, state)
            guard state.captured == nil else { throw .alreadyCaptured(order: order) }
            return [.voided(PaymentVoided(order: order))]

        case .refund(_, let amount):
            let amount = try positive(amount)
            guard let captured = state.captured else { throw .exceedsCaptured(requested: amount, remaining: .zero(amount.currency)) }
            let remaining: Money
            do {
                remaining = try captured.subtracting(state.refunded ?? .zero(captured.currency))
                try remaining.checkCurrency(amount)
            } catch {
                throw .invalidMoney(error)
            }
            guard amount <= remaining else { throw .exceedsCaptured(requested: amount, remaining: remaining) }
            return [.refunded(PaymentRefunded(order: order, amount: amount))]
        }
    }

    public static func evolve(_ state: consuming State, _ event: Event) -> State {
        switch event {
        case .authorised(let authorised):
            state.authorisation = authorised.authorisation
            state.authorised = authorised.amount
        case .declined(let declined):
            state.declines.append(declined.reason)
        case .captured(let captured):
            state.captured = (try? state.captured?.adding(captured.amount)) ?? captured.amount
        case .voided:
            state.isVoided = true
        case .refunded(let refunded):
            state.refunded = (try? state.refunded?.adding(refunded.amount)) ?? refunded.amount
        }
        return state
    }

    private static func usableAuthorisation(_ order: String, _ state: State) throws(BillingError) -> Money {
        guard let authorised = state.authorised else { throw .notAuthorised(order: order) }
        guard !state.isVoided else { throw .alreadyVoided(order: order) }
        return authorised
    }

    private static func positive(_ amount: Money) throws(BillingError) -> Money {
        guard !amount.isZero else { throw .invalidAmount }
        return amount
    }

    private static func valid(reference: String) throws(BillingError) -> String {
        guard (1...64).contains(reference.count), !reference.containsControlCharacters else { throw .invalidReference(reference) }
        return reference
    }
}
