import EventStore
import Ordering
import SharedKernel

/// Ordering's streams: one cart per customer, one stream per order.
enum OrderingStreams {
    static func cart(_ customer: String) throws(OrderingError) -> StreamName { try stream("cart", customer) }
    static func order(_ order: String) throws(OrderingError) -> StreamName { try stream("order", order) }

    /// An id the domain would refuse never reaches the store as a stream name: it is refused by the domain's rule.
    private static func stream(_ category: String, _ id: String) throws(OrderingError) -> StreamName {
        guard (1...64).contains(id.count), !id.containsControlCharacters, let name = try? StreamName(category: category, id: id) else {
            throw .invalidReference(id)
        }
        return name
    }
}
