import Billing
import EventStore

/// Billing's streams: one payment per order.
enum BillingStreams {
    static func payment(_ order: String) throws -> StreamName { try StreamName(category: "payment", id: order) }
}
