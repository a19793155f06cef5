import Contracts
import EventStore
import Ordering
import ServiceKit
import ServiceRuntime

/// Ordering's published order feed: `GET /feed/orders`, what happened to orders, as ``OrderingFeed`` events.
/// The steps in between (awaiting stock, awaiting payment) are Ordering's own business and not published.
enum OrderFeed {
    static let publishedTypes = ["ordering.order-placed", "ordering.order-confirmed", "ordering.order-shipped",
                                 "ordering.order-rejected", "ordering.order-cancelled"]

    static func feed(_ store: EventStore) -> PublishedFeed<OrderingFeed.Event> {
        PublishedFeed(store: store, path: "/feed/orders", types: publishedTypes) { recorded in
            published(try recorded.decode(with: OrderingEvents.order))
        }
    }

    static func published(_ event: Order.Event) -> OrderingFeed.Event {
        switch event {
        case .placed(let e): .init(type: "ordering.v1.order-placed", order: e.order, customer: e.customer, total: e.total)
        case .confirmed(let e): .init(type: "ordering.v1.order-confirmed", order: e.order)
        case .shipped(let e): .init(type: "ordering.v1.order-shipped", order: e.order)
        case .rejected(let e): .init(type: "ordering.v1.order-rejected", order: e.order, reason: e.reason)
        case .cancelled(let e): .init(type: "ordering.v1.order-cancelled", order: e.order, reason: e.reason, refundRequired: e.refundRequired)
        case .stockRequested(let e): .init(type: "ordering.v1.order-stock-requested", order: e.order)
        case .paymentRequested(let e): .init(type: "ordering.v1.order-payment-requested", order: e.order)
        }
    }
}
