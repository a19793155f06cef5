import EventStore
import Ordering

/// Ordering's streams: one cart per customer, one stream per order.
enum OrderingStreams {
    static func cart(_ customer: String) throws -> StreamName { try StreamName(category: "cart", id: customer) }
    static func order(_ order: String) throws -> StreamName { try StreamName(category: "order", id: order) }
}
