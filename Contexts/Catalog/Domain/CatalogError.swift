import SharedKernel

/// Every rule of the Catalog context that a command can break. The edge maps each to a problem document
/// whose `rule` is ``rule``.
public enum CatalogError: Error, Hashable, CustomStringConvertible {
    case invalidSKU(String)
    case invalidName(String)
    case invalidDescription(String)
    case invalidQuantity(Int)
    case invalidOrderReference(String)
    case invalidMoney(MoneyError)
    case invalidPrice
    case productAlreadyExists(SKU)
    case unknownProduct(SKU)
    case productDiscontinued(SKU)
    case insufficientStock(sku: SKU, requested: Int, available: Int)
    case reservationMismatch(sku: SKU, order: String, reserved: Int, requested: Int)
    case unknownReservation(sku: SKU, order: String)
    case reservationAlreadyCommitted(sku: SKU, order: String)
    case stockLimitExceeded(sku: SKU, limit: Int)

    /// A stable name for the rule, for clients to act on.
    public var rule: String {
        switch self {
        case .invalidSKU: "invalid-sku"
        case .invalidName: "invalid-name"
        case .invalidDescription: "invalid-description"
        case .invalidQuantity: "invalid-quantity"
        case .invalidOrderReference: "invalid-order-reference"
        case .invalidMoney: "invalid-money"
        case .invalidPrice: "invalid-price"
        case .productAlreadyExists: "product-already-exists"
        case .unknownProduct: "unknown-product"
        case .productDiscontinued: "product-discontinued"
        case .insufficientStock: "insufficient-stock"
        case .reservationMismatch: "reservation-mismatch"
        case .unknownReservation: "unknown-reservation"
        case .reservationAlreadyCommitted: "reservation-already-committed"
        case .stockLimitExceeded: "stock-limit-exceeded"
        }
    }

    public var description: String {
        switch self {
        case .invalidSKU(let text): "'\(text.prefix(40))' is not a SKU: 1 to 32 upper-case letters, digits and '-'"
        case .invalidName(let reason): "invalid product name: \(reason)"
        case .invalidDescription(let reason): "invalid product description: \(reason)"
        case .invalidQuantity(let quantity): "a quantity must be between 1 and \(Stock.maximumQuantity), not \(quantity)"
        case .invalidOrderReference(let text): "'\(text.prefix(80))' is not an order reference: 1 to 64 characters"
        case .invalidMoney(let error): "\(error)"
        case .invalidPrice: "a price must be more than zero"
        case .productAlreadyExists(let sku): "product \(sku) already exists"
        case .unknownProduct(let sku): "there is no product \(sku)"
        case .productDiscontinued(let sku): "product \(sku) is discontinued"
        case .insufficientStock(let sku, let requested, let available):
            "only \(available) of \(sku) available, \(requested) requested"
        case .reservationMismatch(let sku, let order, let reserved, let requested):
            "order \(order) already reserved \(reserved) of \(sku), not \(requested)"
        case .unknownReservation(let sku, let order): "order \(order) has no reservation of \(sku)"
        case .reservationAlreadyCommitted(let sku, let order): "the reservation of \(sku) for order \(order) is already committed"
        case .stockLimitExceeded(let sku, let limit): "stock of \(sku) would exceed \(limit) units"
        }
    }
}
