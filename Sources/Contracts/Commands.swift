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
        public let status: PaymentStatus
        public let authorised: Money?, captured: Money?, refunded: Money?
        public let declines: [String]
    }
}

/// Where a payment stands, as Billing answers it.
public enum PaymentStatus: String, Codable, Sendable, CaseIterable {
    case none, authorised, declined, captured, voided, refunded
}

/// Where an order stands, as Ordering answers it.
public enum OrderStatus: String, Codable, Sendable, CaseIterable {
    case placed, awaitingStock = "awaiting-stock", awaitingPayment = "awaiting-payment"
    case confirmed, shipped, rejected, cancelled

    /// Confirmed, rejected, cancelled or shipped: the saga has given its answer.
    public var isSettled: Bool { [.confirmed, .rejected, .cancelled, .shipped].contains(self) }
}

/// Where an order's fulfilment saga stands, as Ordering answers it.
public enum SagaStatus: String, Codable, Sendable, CaseIterable {
    case running, compensating, parked, completed, rejected, cancelled
}
