/// Where an event stands in the store's commit order: readers of all events go through the store in this
/// order, and their checkpoints are positions.
///
/// Global positions alone are not in commit order: a transaction that took position 100 can commit after
/// one that took 101, and a reader that had moved past 101 would never see 100. So events are ordered by the
/// id of the transaction that wrote them, then by global position, and readers only read events of
/// transactions older than every transaction of their database still running (`readable_horizon()`, which
/// is `pg_snapshot_xmin` less the transactions of other databases). Any event that commits
/// later belongs to a transaction at or above that horizon, so it sorts after every event already read:
/// no reader ever skips an event.
///
/// Printed and parsed as `transaction-globalPosition`, for example `7391-1204`.
public struct Position: Hashable, Sendable, Comparable, Codable, LosslessStringConvertible {
    /// The PostgreSQL transaction id (`pg_current_xact_id()`) of the append.
    public var transactionID: Int64
    /// The event's global position: unique and increasing in insertion order.
    public var globalPosition: Int64

    public init(transactionID: Int64, globalPosition: Int64) {
        self.transactionID = transactionID
        self.globalPosition = globalPosition
    }

    /// Before the first event.
    public static let start = Position(transactionID: 0, globalPosition: 0)

    public static func < (lhs: Position, rhs: Position) -> Bool {
        (lhs.transactionID, lhs.globalPosition) < (rhs.transactionID, rhs.globalPosition)
    }

    public var description: String { "\(transactionID)-\(globalPosition)" }

    public init?(_ description: String) {
        let parts = description.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 2, let transaction = Int64(parts[0]), let position = Int64(parts[1]),
            transaction >= 0, position >= 0
        else { return nil }
        self.init(transactionID: transaction, globalPosition: position)
    }
}
