import SharedKernel

/// Every rule of the Ordering context that a command can break.
public enum OrderingError: Error, Hashable, CustomStringConvertible {
    case invalidQuantity(Int)
    case invalidReason(String)
    case invalidMoney(MoneyError)
    case invalidReference(String)
    case itemNotInCart(String)
    case emptyCart
    case tooManyLines(Int)
    case orderAlreadyPlaced(String)
    case unknownOrder(String)
    /// The order's status does not allow the command: (what was asked, the status it is in).
    case notAllowed(String, status: Order.Status)

    public var rule: String {
        switch self {
        case .invalidQuantity: "invalid-quantity"
        case .invalidReason: "invalid-reason"
        case .invalidMoney: "invalid-money"
        case .invalidReference: "invalid-reference"
        case .itemNotInCart: "item-not-in-cart"
        case .emptyCart: "empty-cart"
        case .tooManyLines: "too-many-lines"
        case .orderAlreadyPlaced: "order-already-placed"
        case .unknownOrder: "unknown-order"
        case .notAllowed: "order-status"
        }
    }

    public var description: String {
        switch self {
        case .invalidQuantity(let quantity): "a quantity must be between 1 and \(Cart.maximumQuantity), not \(quantity)"
        case .invalidReason(let reason): "invalid reason: \(reason)"
        case .invalidMoney(let error): "\(error)"
        case .invalidReference(let text): "'\(text.prefix(80))' is not a valid id: 1 to 64 characters"
        case .itemNotInCart(let sku): "\(sku) is not in the cart"
        case .emptyCart: "the cart is empty"
        case .tooManyLines(let count): "an order has at most \(Cart.maximumLines) lines, not \(count)"
        case .orderAlreadyPlaced(let id): "order \(id) is already placed"
        case .unknownOrder(let id): "there is no order \(id)"
        case .notAllowed(let what, let status): "cannot \(what) an order that is \(status)"
        }
    }
}

func validReference(_ text: String) throws(OrderingError) -> String {
    guard (1...64).contains(text.count), !text.containsControlCharacters else { throw .invalidReference(text) }
    return text
}
