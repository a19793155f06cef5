import EventSourcing
import SharedKernel

/// A customer's cart: SKUs and quantities, until it is checked out into an order. Prices are not in the cart:
/// they are fixed at checkout, from Ordering's own copy of the catalog. One stream per customer:
/// `cart-<customer id>`; a checked-out cart starts empty again.
public enum Cart: Decider {
    public enum Command: Sendable, Equatable {
        case add(customer: String, sku: String, quantity: Int)
        case setQuantity(customer: String, sku: String, quantity: Int)
        case remove(customer: String, sku: String)
        case clear(customer: String)
        case checkOut(customer: String, order: String)
    }

    public enum Event: Sendable, Equatable {
        case itemAdded(ItemAdded)
        case quantityChanged(QuantityChanged)
        case itemRemoved(ItemRemoved)
        case cleared(CartCleared)
        case checkedOut(CartCheckedOut)
    }

    public struct ItemAdded: Codable, Sendable, Equatable {
        public let customer: String, sku: String, quantity: Int
        public init(customer: String, sku: String, quantity: Int) { self.customer = customer; self.sku = sku; self.quantity = quantity }
    }
    public struct QuantityChanged: Codable, Sendable, Equatable {
        public let customer: String, sku: String, quantity: Int
        public init(customer: String, sku: String, quantity: Int) { self.customer = customer; self.sku = sku; self.quantity = quantity }
    }
    public struct ItemRemoved: Codable, Sendable, Equatable {
        public let customer: String, sku: String
        public init(customer: String, sku: String) { self.customer = customer; self.sku = sku }
    }
    public struct CartCleared: Codable, Sendable, Equatable {
        public let customer: String
        public init(customer: String) { self.customer = customer }
    }
    public struct CartCheckedOut: Codable, Sendable, Equatable {
        public let customer: String, order: String, items: [Item]
        public init(customer: String, order: String, items: [Item]) { self.customer = customer; self.order = order; self.items = items }
    }

    public struct Item: Codable, Sendable, Equatable {
        public let sku: String
        public var quantity: Int
        public init(sku: String, quantity: Int) {
            self.sku = sku
            self.quantity = quantity
        }
    }

    public struct State: Sendable, Equatable {
        /// In the order they were first added.
        public var items: [Item] = []
        public func quantity(of sku: String) -> Int? { items.first { $0.sku == sku }?.quantity }
    }

    public static let initialState = State()
    public static let maximumQuantity = 99
    public static let maximumLines = 50

    public static func decide(_ command: Command, _ state: State) throws(OrderingError) -> [Event] {
        switch command {
        case .add(let customer, let sku, let quantity):
            let customer = try validReference(customer), sku = try validReference(sku), quantity = try valid(quantity)
            let total = (state.quantity(of: sku) ?? 0) + quantity
            guard total <= maximumQuantity else { throw .invalidQuantity(total) }
            if state.quantity(of: sku) == nil && state.items.count >= maximumLines { throw .tooManyLines(state.items.count + 1) }
            return [.itemAdded(ItemAdded(customer: customer, sku: sku, quantity: quantity))]

        case .setQuantity(let customer, let sku, let quantity):
            let customer = try validReference(customer), quantity = try valid(quantity)
            guard let current = state.quantity(of: sku) else { throw .itemNotInCart(sku) }
            return current == quantity ? [] : [.quantityChanged(QuantityChanged(customer: customer, sku: sku, quantity: quantity))]

        case .remove(let customer, let sku):
            let customer = try validReference(customer)
            guard state.quantity(of: sku) != nil else { throw .itemNotInCart(sku) }
            return [.itemRemoved(ItemRemoved(customer: customer, sku: sku))]

        case .clear(let customer):
            let customer = try validReference(customer)
            return state.items.isEmpty ? [] : [.cleared(CartCleared(customer: customer))]

        case .checkOut(let customer, let order):
            let customer = try validReference(customer), order = try validReference(order)
            guard !state.items.isEmpty else { throw .emptyCart }
            return [.checkedOut(CartCheckedOut(customer: customer, order: order, items: state.items))]
        }
    }

    public static func evolve(_ state: consuming State, _ event: Event) -> State {
        switch event {
        case .itemAdded(let added):
            if let index = state.items.firstIndex(where: { $0.sku == added.sku }) {
                state.items[index].quantity += added.quantity
            } else {
                state.items.append(Item(sku: added.sku, quantity: added.quantity))
            }
        case .quantityChanged(let changed):
            if let index = state.items.firstIndex(where: { $0.sku == changed.sku }) { state.items[index].quantity = changed.quantity }
        case .itemRemoved(let removed):
            state.items.removeAll { $0.sku == removed.sku }
        case .cleared, .checkedOut:
            state.items = []
        }
        return state
    }

    static func valid(_ quantity: Int) throws(OrderingError) -> Int {
        guard (1...maximumQuantity).contains(quantity) else { throw .invalidQuantity(quantity) }
        return quantity
    }
}
