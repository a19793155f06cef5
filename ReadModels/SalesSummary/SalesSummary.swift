import Essentials
import EventStore
import Foundation
import GRDB
import Ordering
import Projections

/// Units sold and revenue per product per day: a question no single order answers. An order counts on the
/// day it is confirmed; one cancelled after confirmation (and refunded) counts no more.
public struct SalesSummary: Projection {
    public let name = "ordering-sales-summary"
    public let version = 1
    public let eventTypes: Set<String> = ["ordering.order-placed", "ordering.order-confirmed", "ordering.order-cancelled"]

    public init() {}

    public func createSchema(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TABLE order_lines (order_id TEXT NOT NULL, sku TEXT NOT NULL, units INTEGER NOT NULL, revenue INTEGER NOT NULL,
                                      currency TEXT NOT NULL, PRIMARY KEY (order_id, sku));
            CREATE TABLE confirmed_orders (order_id TEXT PRIMARY KEY, day TEXT NOT NULL);
            CREATE TABLE daily_sales (day TEXT NOT NULL, sku TEXT NOT NULL, currency TEXT NOT NULL,
                                      units INTEGER NOT NULL, revenue INTEGER NOT NULL, PRIMARY KEY (day, sku, currency));
            """)
    }

    public func apply(_ event: RecordedEvent, to db: Database) throws {
        switch try event.decode(with: OrderingEvents.order) {
        case .placed(let e):
            for line in e.lines {
                let revenue = line.unitPrice.minorUnits * Int64(line.quantity)
                try db.cachedStatement(sql: """
                    INSERT INTO order_lines VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT (order_id, sku) DO UPDATE SET units = units + excluded.units, revenue = revenue + excluded.revenue
                    """).execute(arguments: [e.order, line.sku, line.quantity, revenue, line.unitPrice.currency.code])
            }
        case .confirmed(let e):
            let day = String(Timestamp.iso8601(event.recordedAt).prefix(10))
            try db.cachedStatement(sql: "INSERT OR IGNORE INTO confirmed_orders VALUES (?, ?)").execute(arguments: [e.order, day])
            try add(e.order, day: day, sign: 1, db)
        case .cancelled(let e) where e.refundRequired:
            if let day = try String.fetchOne(db, sql: "SELECT day FROM confirmed_orders WHERE order_id = ?", arguments: [e.order]) {
                try add(e.order, day: day, sign: -1, db)
            }
        default:
            break
        }
    }

    private func add(_ order: String, day: String, sign: Int, _ db: Database) throws {
        try db.cachedStatement(sql: """
            INSERT INTO daily_sales (day, sku, currency, units, revenue)
            SELECT ?, sku, currency, ? * units, ? * revenue FROM order_lines WHERE order_id = ?
            ON CONFLICT (day, sku, currency) DO UPDATE SET units = units + excluded.units, revenue = revenue + excluded.revenue
            """).execute(arguments: [day, sign, sign, order])
    }
}

extension SalesSummary {
    public struct Row: Codable, Sendable, Equatable {
        public let day: String, sku: String, units: Int, revenue: Int64, currency: String
        public init(day: String, sku: String, units: Int, revenue: Int64, currency: String) {
            self.day = day; self.sku = sku; self.units = units; self.revenue = revenue; self.currency = currency
        }
    }

    /// Sales from `from` to `to` (days, `YYYY-MM-DD`, inclusive), by day then SKU.
    public static func sales(_ db: Database, from: String, to: String) throws -> [Row] {
        try GRDB.Row.fetchAll(db, sql: """
            SELECT * FROM daily_sales WHERE day BETWEEN ? AND ? AND units <> 0 ORDER BY day, sku
            """, arguments: [from, to]).map {
            Row(day: $0["day"], sku: $0["sku"], units: $0["units"], revenue: $0["revenue"], currency: $0["currency"])
        }
    }
}
