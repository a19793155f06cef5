import Billing
import Contracts
import EventStore
import ServiceKit
import ServiceRuntime

/// Billing's published payment feed: `GET /feed/payments`, as ``BillingFeed`` events.
enum PaymentFeed {
    static func feed(_ store: EventStore) -> PublishedFeed<BillingFeed.Event> {
        PublishedFeed(store: store, path: "/feed/payments", types: BillingEvents.payment.typeNames) { recorded in
            published(try recorded.decode(with: BillingEvents.payment))
        }
    }

    static func published(_ event: Payment.Event) -> BillingFeed.Event {
        switch event {
        case .authorised(let e): .init(type: "billing.v1.payment-authorised", order: e.order, amount: e.amount)
        case .declined(let e): .init(type: "billing.v1.payment-declined", order: e.order, amount: e.amount, reason: e.reason)
        case .captured(let e): .init(type: "billing.v1.payment-captured", order: e.order, amount: e.amount)
        case .voided(let e): .init(type: "billing.v1.payment-voided", order: e.order)
        case .refunded(let e): .init(type: "billing.v1.payment-refunded", order: e.order, amount: e.amount)
        }
    }
}
