import Foundation
import SharedKernel

/// The commands Catalog takes from other contexts (the fulfilment saga), over HTTP with an `Idempotency-Key`.
public enum CatalogCommands {
    /// `POST /reservations`: reserves every line for the order, or none (422 `insufficient-stock`).
    public struct Reserve: Codable, Sendable, Equatable {
        public struct Line: Codable, Sendable, Equatable {
            public let sku: String, quantity: Int
            public init(sku: String, quantity: Int) { self.sku = sku; self.quantity = quantity }
        }
        public let order: String, lines: [Line]
        public init(order: String, lines: [Line]) { self.order = order; self.lines = lines }
    }

    /// `POST /products/{sku}/stock`: units received (or returned).
    public struct Receive: Codable, Sendable, Equatable {
        public let quantity: Int
        public init(quantity: Int) { self.quantity = quantity }
    }

    public static let reserve = "/reservations"
    /// `POST`: releases the order's reservation of one SKU (nothing if there is none; 422
    /// `reservation-already-committed` once committed).
    public static func release(sku: String, order: String) -> String { "/stock/\(segment(sku))/reservations/\(segment(order))/release" }
    /// `POST`: the reserved units leave with the order.
    public static func commit(sku: String, order: String) -> String { "/stock/\(segment(sku))/reservations/\(segment(order))/commit" }
    public static func receive(sku: String) -> String { "/products/\(segment(sku))/stock" }
}

/// The commands Billing takes from other contexts, over HTTP with an `Idempotency-Key`.
public enum BillingCommands {
    /// `POST /payments/{order}/authorise`: 201 with the payment, `authorised` or `declined`.
    public struct Authorise: Codable, Sendable, Equatable {
        public let amount: Money, card: String
        public init(amount: Money, card: String) { self.amount = amount; self.card = card }
    }

    /// The body of capture and refund.
    public struct Amount: Codable, Sendable, Equatable {
        public let amount: Money
        public init(amount: Money) { self.amount = amount }
    }

    /// A payment as Billing answers it (`GET /payments/{order}` and every command).
    public struct Payment: Codable, Sendable, Equatable {
        public let order: String
        /// `none`, `authorised`, `declined`, `captured`, `voided` or `refunded`.
        public let status: String
        public let authorised: Money?, captured: Money?, refunded: Money?
        public let declines: [String]
    }

    public static func payment(_ order: String) -> String { "/payments/\(segment(order))" }
    public static func authorise(_ order: String) -> String { "/payments/\(segment(order))/authorise" }
    public static func capture(_ order: String) -> String { "/payments/\(segment(order))/capture" }
    public static func void(_ order: String) -> String { "/payments/\(segment(order))/void" }
    public static func refund(_ order: String) -> String { "/payments/\(segment(order))/refund" }
}

/// A path segment, percent-encoded: ids may hold characters a URL path cannot.
func segment(_ text: String) -> String {
    var allowed = CharacterSet.urlPathAllowed
    allowed.remove(charactersIn: "/;?#%")
    return text.addingPercentEncoding(withAllowedCharacters: allowed) ?? text
}
