import SharedKernel
import EventSourcing
import HashTreeCollections

/// The stock of one SKU: units on hand, and the reservations orders hold on them.
/// One stream per SKU: `stock-<SKU>`.
///
/// Available stock (on hand less reserved) never goes below zero. Reservations are per order and
/// idempotent: reserving again for the same order and quantity, releasing a reservation that is gone, or
/// committing one twice changes nothing, so a retried saga step never reserves twice.
///
/// The state is bounded whatever the stream's length: reservations live until they are committed or released,
/// and the stock remembers the latest ``rememberedCommits`` committed orders (by the order of their commits), not
/// every one. A command about an order committed longer ago than that is decided as if it had never been reserved:
/// a commit is refused (`unknownReservation`), a release changes nothing. The saga returns the units of a committed
/// order it compensates as received stock (it knows it committed them), and a retried request is answered by its
/// idempotency key (kept 30 days); so nothing the shop does reaches back further.
///
/// An order that needs several SKUs reserves them all or none: the Catalog service decides each SKU's
/// reservation and appends them to their streams in one database transaction (see the README).
public enum Stock: Decider {
    public enum Command: Sendable, Equatable {
        case receive(SKU, quantity: Int)
        case reserve(SKU, order: String, quantity: Int)
        case release(SKU, order: String)
        /// The reserved units leave the warehouse with the order.
        case commit(SKU, order: String)
    }

    public enum Event: Sendable, Equatable {
        case received(StockReceived)
        case reserved(StockReserved)
        case released(ReservationReleased)
        case committed(ReservationCommitted)
    }

    public struct StockReceived: Codable, Sendable, Equatable {
        public let sku: SKU, quantity: Int
        public init(sku: SKU, quantity: Int) { self.sku = sku; self.quantity = quantity }
    }
    public struct StockReserved: Codable, Sendable, Equatable {
        public let sku: SKU, order: String, quantity: Int
        public init(sku: SKU, order: String, quantity: Int) { self.sku = sku; self.order = order; self.quantity = quantity }
    }
    public struct ReservationReleased: Codable, Sendable, Equatable {
        public let sku: SKU, order: String, quantity: Int
        public init(sku: SKU, order: String, quantity: Int) { self.sku = sku; self.order = order; self.quantity = quantity }
    }
    public struct ReservationCommitted: Codable, Sendable, Equatable {
        public let sku: SKU, order: String, quantity: Int
        public init(sku: SKU, order: String, quantity: Int) { self.sku = sku; self.order = order; self.quantity = quantity }
    }

    /// Kept between commands (a product's stock is a long stream), so its maps are persistent hash tries: the
    /// kept state and the one a command changes share all but the path to what changed. With plain dictionaries a
    /// command copied every committed reservation first, and cost more with every order the product had had.
    public struct State: Sendable, Equatable, Codable {
        public var onHand = 0
        /// Units held per order, not yet committed or released.
        public var reservations: TreeDictionary<String, Int> = [:]
        /// Orders whose reservation was committed, with their quantity: the latest ``rememberedCommits``, for the
        /// idempotency of a reservation, its release and its commit.
        public var committed: TreeDictionary<String, Int> = [:]
        /// The same orders by the number of their commit (from `oldestCommit` to `nextCommit - 1`): which to forget next.
        public var commitOrder: TreeDictionary<Int, String> = [:]
        public var oldestCommit = 0, nextCommit = 0

        public var reserved: Int { reservations.values.reduce(0, +) }
        public var available: Int { onHand - reserved }
    }

    public static let initialState = State()
    /// The snapshots' schema: change it with `evolve` or `State` (see `Snapshotting`), and every stock stream is
    /// folded from its first event once more.
    public static let snapshotSchema = "stock.1"
    /// The most units one command may move, and the most one SKU may have on hand.
    public static let maximumQuantity = 1_000_000
    /// How many committed orders a SKU's stock remembers (see above).
    public static let rememberedCommits = 10_000

    public static func decide(_ command: Command, _ state: State) throws(CatalogError) -> [Event] {
        switch command {
        case .receive(let sku, let quantity):
            let quantity = try valid(quantity)
            guard state.onHand + quantity <= maximumQuantity else { throw .stockLimitExceeded(sku: sku, limit: maximumQuantity) }
            return [.received(StockReceived(sku: sku, quantity: quantity))]

        case .reserve(let sku, let order, let quantity):
            let order = try valid(order: order), quantity = try valid(quantity)
            if let reserved = state.reservations[order] ?? state.committed[order] {
                guard reserved == quantity else {
                    throw .reservationMismatch(sku: sku, order: order, reserved: reserved, requested: quantity)
                }
                return []
            }
            guard quantity <= state.available else {
                throw .insufficientStock(sku: sku, requested: quantity, available: state.available)
            }
            return [.reserved(StockReserved(sku: sku, order: order, quantity: quantity))]

        case .release(let sku, let order):
            let order = try valid(order: order)
            guard state.committed[order] == nil else { throw .reservationAlreadyCommitted(sku: sku, order: order) }
            guard let quantity = state.reservations[order] else { return [] }
            return [.released(ReservationReleased(sku: sku, order: order, quantity: quantity))]

        case .commit(let sku, let order):
            let order = try valid(order: order)
            if state.committed[order] != nil { return [] }
            guard let quantity = state.reservations[order] else { throw .unknownReservation(sku: sku, order: order) }
            return [.committed(ReservationCommitted(sku: sku, order: order, quantity: quantity))]
        }
    }

    public static func evolve(_ state: consuming State, _ event: Event) -> State {
        switch event {
        case .received(let received):
            state.onHand += received.quantity
        case .reserved(let reserved):
            state.reservations[reserved.order] = reserved.quantity
        case .released(let released):
            state.reservations[released.order] = nil
        case .committed(let committed):
            state.reservations[committed.order] = nil
            state.onHand -= committed.quantity
            if state.committed.updateValue(committed.quantity, forKey: committed.order) == nil {
                state.commitOrder[state.nextCommit] = committed.order
                state.nextCommit += 1
            }
            while state.committed.count > rememberedCommits, let oldest = state.commitOrder.removeValue(forKey: state.oldestCommit) {
                state.committed[oldest] = nil
                state.oldestCommit += 1
            }
        }
        return state
    }

    static func valid(_ quantity: Int) throws(CatalogError) -> Int {
        guard (1...maximumQuantity).contains(quantity) else { throw .invalidQuantity(quantity) }
        return quantity
    }

    static func valid(order: String) throws(CatalogError) -> String {
        guard (1...64).contains(order.count), !order.containsControlCharacters else { throw .invalidOrderReference(order) }
        return order
    }
}
