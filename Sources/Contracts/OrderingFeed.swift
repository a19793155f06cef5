import SharedKernel

/// Ordering's published integration events (`GET /feed/orders`): what happened to orders, for other
/// contexts. Type names are `ordering.v1.<fact>`.
public enum OrderingFeed {
    public typealias Page = FeedPage<Event>

    public struct Event: Codable, Sendable, Equatable {
        /// `ordering.v1.order-placed`, `-confirmed`, `-shipped`, `-rejected` or `-cancelled`.
        public let type: String
        public let order: String
        /// On `order-placed`.
        public let customer: String?
        public let total: Money?
        /// On `order-rejected` and `order-cancelled`.
        public let reason: String?
        /// On `order-cancelled`: it was cancelled after payment, so the money goes back.
        public let refundRequired: Bool?

        public init(type: String, order: String, customer: String? = nil, total: Money? = nil, reason: String? = nil,
                    refundRequired: Bool? = nil) {
            self.type = type
            self.order = order
            self.customer = customer
            self.total = total
            self.reason = reason
            self.refundRequired = refundRequired
        }
    }
}

/// Billing's published integration events (`GET /feed/payments`). Type names are `billing.v1.<fact>`.
public enum BillingFeed {
    public typealias Page = FeedPage<Event>

    public struct Event: Codable, Sendable, Equatable {
        /// `billing.v1.payment-authorised`, `-declined`, `-captured`, `-voided` or `-refunded`.
        public let type: String
        public let order: String
        public let amount: Money?
        /// On `payment-declined`.
        public let reason: String?

        public init(type: String, order: String, amount: Money? = nil, reason: String? = nil) {
            self.type = type
            self.order = order
            self.amount = amount
            self.reason = reason
        }
    }
}
