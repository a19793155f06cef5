import EventSourcing
import SharedKernel

/// A product of the catalog: its name, description and price, until it is discontinued.
/// One stream per product: `product-<SKU>`.
public enum Product: Decider {
    public enum Command: Sendable, Equatable {
        case add(sku: SKU, name: String, description: String, price: Money)
        case rename(SKU, to: String)
        case changePrice(SKU, to: Money)
        case discontinue(SKU)

        public var sku: SKU {
            switch self {
            case .add(let sku, _, _, _), .rename(let sku, _), .changePrice(let sku, _), .discontinue(let sku): sku
            }
        }
    }

    public enum Event: Sendable, Equatable {
        case added(ProductAdded)
        case renamed(ProductRenamed)
        case priceChanged(PriceChanged)
        case discontinued(ProductDiscontinued)
    }

    public struct ProductAdded: Codable, Sendable, Equatable {
        public let sku: SKU, name: String, description: String, price: Money
        public init(sku: SKU, name: String, description: String, price: Money) { self.sku = sku; self.name = name; self.description = description; self.price = price }
    }

    public struct ProductRenamed: Codable, Sendable, Equatable {
        public let sku: SKU, name: String
        public init(sku: SKU, name: String) { self.sku = sku; self.name = name }
    }

    public struct PriceChanged: Codable, Sendable, Equatable {
        public let sku: SKU, price: Money
        public init(sku: SKU, price: Money) { self.sku = sku; self.price = price }
    }

    public struct ProductDiscontinued: Codable, Sendable, Equatable {
        public let sku: SKU
        public init(sku: SKU) { self.sku = sku }
    }

    public struct State: Sendable, Equatable {
        public var sku: SKU?
        public var name = ""
        public var description = ""
        public var price: Money?
        public var isDiscontinued = false
        public var exists: Bool { sku != nil }
    }

    public static let initialState = State()
    public static let maximumNameLength = 120
    public static let maximumDescriptionLength = 2_000

    public static func decide(_ command: Command, _ state: State) throws(CatalogError) -> [Event] {
        if case .add(let sku, let name, let description, let price) = command {
            guard !state.exists else { throw .productAlreadyExists(sku) }
            return [.added(ProductAdded(sku: sku, name: try validName(name), description: try validDescription(description),
                                        price: try validPrice(price)))]
        }
        guard state.exists, let currentPrice = state.price else { throw .unknownProduct(command.sku) }
        let sku = command.sku
        guard !state.isDiscontinued else {
            if case .discontinue = command { return [] }
            throw .productDiscontinued(sku)
        }
        switch command {
        case .add:
            preconditionFailure("handled above")
        case .rename(_, let name):
            let name = try validName(name)
            return name == state.name ? [] : [.renamed(ProductRenamed(sku: sku, name: name))]
        case .changePrice(_, let price):
            let price = try validPrice(price)
            do { try currentPrice.checkCurrency(price) } catch { throw .invalidMoney(error) }
            return price == currentPrice ? [] : [.priceChanged(PriceChanged(sku: sku, price: price))]
        case .discontinue:
            return [.discontinued(ProductDiscontinued(sku: sku))]
        }
    }

    public static func evolve(_ state: consuming State, _ event: Event) -> State {
        switch event {
        case .added(let added):
            state.sku = added.sku
            state.name = added.name
            state.description = added.description
            state.price = added.price
        case .renamed(let renamed): state.name = renamed.name
        case .priceChanged(let changed): state.price = changed.price
        case .discontinued: state.isDiscontinued = true
        }
        return state
    }

    static func validName(_ name: String) throws(CatalogError) -> String {
        let trimmed = name.trimmingWhitespace
        guard !trimmed.isEmpty else { throw .invalidName("it is empty") }
        guard trimmed.count <= maximumNameLength else { throw .invalidName("longer than \(maximumNameLength) characters") }
        guard !trimmed.containsControlCharacters else { throw .invalidName("it contains control characters") }
        return trimmed
    }

    static func validDescription(_ description: String) throws(CatalogError) -> String {
        let trimmed = description.trimmingWhitespace
        guard trimmed.count <= maximumDescriptionLength else {
            throw .invalidDescription("longer than \(maximumDescriptionLength) characters")
        }
        return trimmed
    }

    static func validPrice(_ price: Money) throws(CatalogError) -> Money {
        guard !price.isZero else { throw .invalidPrice }
        return price
    }
}
