import EventSourcing
import SharedKernel

/// An order, from checkout to shipping: placed → awaiting stock → awaiting payment → confirmed → shipped, or
/// rejected (with a reason) before confirmation, or cancelled (with a reason) before shipping. The fulfilment
/// saga drives it; every step is idempotent, so a retried step changes nothing. One stream per order:
/// `order-<order id>`.
public enum Order: Decider {
    public enum Status: String, Codable, Sendable, Hashable, CustomStringConvertible {
        case placed, awaitingStock = "awaiting-stock", awaitingPayment = "awaiting-payment"
        case confirmed, shipped, rejected, cancelled
        public var description: String { rawValue }
        public var isFinal: Bool { [.shipped, .rejected, .cancelled].contains(self) }
    }

    /// A priced line, its price fixed at checkout.
    public struct Line: Codable, Sendable, Equatable {
        public let sku: String
        public let name: String
        public let unitPrice: Money
        public let quantity: Int

        public init(sku: String, name: String, unitPrice: Money, quantity: Int) {
            self.sku = sku
            self.name = name
            self.unitPrice = unitPrice
            self.quantity = quantity
        }
    }

    public enum Command: Sendable, Equatable {
        case place(order: String, customer: String, lines: [Line])
        case awaitStock(order: String)
        case stockReserved(order: String)
        case confirm(order: String)
        case ship(order: String)
        case reject(order: String, reason: String)
        case cancel(order: String, reason: String)

        public var order: String {
            switch self {
            case .place(let order, _, _), .awaitStock(let order), .stockReserved(let order), .confirm(let order),
                 .ship(let order), .reject(let order, _), .cancel(let order, _): order
            }
        }
    }

    public enum Event: Sendable, Equatable {
        case placed(OrderPlaced)
        case stockRequested(OrderStockRequested)
        case paymentRequested(OrderPaymentRequested)
        case confirmed(OrderConfirmed)
        case shipped(OrderShipped)
        case rejected(OrderRejected)
        case cancelled(OrderCancelled)
    }

    public struct OrderPlaced: Codable, Sendable, Equatable {
        public let order: String, customer: String, lines: [Line], total: Money
        public init(order: String, customer: String, lines: [Line], total: Money) { self.order = order; self.customer = customer; self.lines = lines; self.total = total }
    }
    public struct OrderStockRequested: Codable, Sendable, Equatable {
        public let order: String
        public init(order: String) { self.order = order }
    }
    public struct OrderPaymentRequested: Codable, Sendable, Equatable {
        public let order: String
        public init(order: String) { self.order = order }
    }
    public struct OrderConfirmed: Codable, Sendable, Equatable {
        public let order: String
        public init(order: String) { self.order = order }
    }
    public struct OrderShipped: Codable, Sendable, Equatable {
        public let order: String
        public init(order: String) { self.order = order }
    }
    public struct OrderRejected: Codable, Sendable, Equatable {
        public let order: String, reason: String
        public init(order: String, reason: String) { self.order = order; self.reason = reason }
    }
    /// `refundRequired`: it was cancelled after payment was confirmed, so the money must go back.
    public struct OrderCancelled: Codable, Sendable, Equatable {
        public let order: String, reason: String, refundRequired: Bool
        public init(order: String, reason: String, refundRequired: Bool) { self.order = order; self.reason = reason; self.refundRequired = refundRequired }
    }

    public struct State: Sendable, Equatable {
        public var status: Status?
        public var customer = ""
        public var lines: [Line] = []
        public var total: Money?
        public var reason: String?
        public var refundRequired = false
    }

    public static let initialState = State()
    public static let maximumReasonLength = 500

    public static func decide(_ command: Command, _ state: State) throws(OrderingError) -> [Event] {
        let order = try validReference(command.order)
        if case .place(_, let customer, let lines) = command {
            guard state.status == nil else { throw .orderAlreadyPlaced(order) }
            return [.placed(try placed(order, customer: customer, lines: lines))]
        }
        guard let status = state.status else { throw .unknownOrder(order) }

        switch command {
        case .place:
            preconditionFailure("handled above")
        case .awaitStock:
            return try step(status, from: .placed, to: .awaitingStock, "reserve stock for") {
                .stockRequested(OrderStockRequested(order: order))
            }
        case .stockReserved:
            return try step(status, from: .awaitingStock, to: .awaitingPayment, "take payment for") {
                .paymentRequested(OrderPaymentRequested(order: order))
            }
        case .confirm:
            return try step(status, from: .awaitingPayment, to: .confirmed, "confirm") {
                .confirmed(OrderConfirmed(order: order))
            }
        case .ship:
            return try step(status, from: .confirmed, to: .shipped, "ship") { .shipped(OrderShipped(order: order)) }
        case .reject(_, let reason):
            let reason = try valid(reason: reason)
            switch status {
            case .placed, .awaitingStock, .awaitingPayment: return [.rejected(OrderRejected(order: order, reason: reason))]
            case .rejected: return []
            case .confirmed, .shipped, .cancelled: throw .notAllowed("reject", status: status)
            }
        case .cancel(_, let reason):
            let reason = try valid(reason: reason)
            switch status {
            case .placed, .awaitingStock, .awaitingPayment:
                return [.cancelled(OrderCancelled(order: order, reason: reason, refundRequired: false))]
            case .confirmed: return [.cancelled(OrderCancelled(order: order, reason: reason, refundRequired: true))]
            case .cancelled: return []
            case .shipped, .rejected: throw .notAllowed("cancel", status: status)
            }
        }
    }

    public static func evolve(_ state: consuming State, _ event: Event) -> State {
        switch event {
        case .placed(let placed):
            state.status = .placed
            state.customer = placed.customer
            state.lines = placed.lines
            state.total = placed.total
        case .stockRequested: state.status = .awaitingStock
        case .paymentRequested: state.status = .awaitingPayment
        case .confirmed: state.status = .confirmed
        case .shipped: state.status = .shipped
        case .rejected(let rejected):
            state.status = .rejected
            state.reason = rejected.reason
        case .cancelled(let cancelled):
            state.status = .cancelled
            state.reason = cancelled.reason
            state.refundRequired = cancelled.refundRequired
        }
        return state
    }

    /// A forward step: from `from` to `to`; repeating it once done changes nothing.
    private static func step(_ status: Status, from: Status, to: Status, _ what: String, _ event: () -> Event) throws(OrderingError) -> [Event] {
        if status == from { return [event()] }
        if status == to { return [] }
        throw .notAllowed(what, status: status)
    }

    private static func placed(_ order: String, customer: String, lines: [Line]) throws(OrderingError) -> OrderPlaced {
        let customer = try validReference(customer)
        guard let first = lines.first else { throw .emptyCart }
        guard lines.count <= Cart.maximumLines else { throw .tooManyLines(lines.count) }
        var total = Money.zero(first.unitPrice.currency)
        for line in lines {
            _ = try validReference(line.sku)
            _ = try Cart.valid(line.quantity)
            do {
                total = try total.adding(try line.unitPrice.multiplied(by: line.quantity))
            } catch {
                throw .invalidMoney(error)
            }
        }
        return OrderPlaced(order: order, customer: customer, lines: lines, total: total)
    }

    private static func valid(reason: String) throws(OrderingError) -> String {
        let reason = reason.trimmingWhitespace
        guard !reason.isEmpty else { throw .invalidReason("it is empty") }
        guard reason.count <= maximumReasonLength else { throw .invalidReason("longer than \(maximumReasonLength) characters") }
        return reason
    }
}
