import EventStore
import Foundation
import GRDB
import Ordering
import Projections

/// Ordering's orders as customers and operators look at them: each customer's orders, newest first, and one
/// order's lines, total, status and timeline (every change of status, with its reason and time).
public struct OrderHistory: Projection {
    public let name = "ordering-order-history"
    public let version = 2
    public let eventTypes = OrderingEvents.order.typeNames

    public init() {}

    public func createSchema(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TABLE orders (
                order_id       TEXT    PRIMARY KEY,
                customer       TEXT    NOT NULL,
                status         TEXT    NOT NULL,
                reason         TEXT,
                total_amount   INTEGER NOT NULL,
                total_currency TEXT    NOT NULL,
                placed_at      TEXT    NOT NULL,
                updated_at     TEXT    NOT NULL,
                placed_position INTEGER NOT NULL,
                steps          INTEGER NOT NULL DEFAULT 0
            );
            CREATE INDEX orders_by_customer ON orders (customer, placed_position DESC);
            CREATE TABLE order_lines (
                order_id TEXT NOT NULL, line INTEGER NOT NULL, sku TEXT NOT NULL, name TEXT NOT NULL,
                unit_amount INTEGER NOT NULL, currency TEXT NOT NULL, quantity INTEGER NOT NULL,
                PRIMARY KEY (order_id, line)
            );
            CREATE TABLE order_timeline (
                order_id TEXT NOT NULL, step INTEGER NOT NULL, status TEXT NOT NULL, reason TEXT, at TEXT NOT NULL,
                PRIMARY KEY (order_id, step)
            );
            """)
    }

    public func apply(_ event: RecordedEvent, to db: Database) throws {
        let at = Timestamp.iso8601(event.recordedAt)
        let order: Order.Event = try event.decode(with: OrderingEvents.order)
        switch order {
        case .placed(let e):
            try db.cachedStatement(sql: """
                INSERT OR REPLACE INTO orders (order_id, customer, status, total_amount, total_currency, placed_at, updated_at, placed_position)
                VALUES (?, ?, 'placed', ?, ?, ?, ?, ?)
                """).execute(arguments: [e.order, e.customer, e.total.minorUnits, e.total.currency.code, at, at, event.globalPosition])
            for (index, line) in e.lines.enumerated() {
                try db.cachedStatement(sql: "INSERT OR REPLACE INTO order_lines VALUES (?, ?, ?, ?, ?, ?, ?)").execute(arguments: [
                    e.order, index + 1, line.sku, line.name, line.unitPrice.minorUnits, line.unitPrice.currency.code, line.quantity])
            }
            try step(e.order, "placed", nil, at, db)
        case .awaitingStock(let e): try step(e.order, "awaiting-stock", nil, at, db)
        case .awaitingPayment(let e): try step(e.order, "awaiting-payment", nil, at, db)
        case .confirmed(let e): try step(e.order, "confirmed", nil, at, db)
        case .shipped(let e): try step(e.order, "shipped", nil, at, db)
        case .rejected(let e): try step(e.order, "rejected", e.reason, at, db)
        case .cancelled(let e): try step(e.order, "cancelled", e.reason, at, db)
        }
    }

    private func step(_ order: String, _ status: String, _ reason: String?, _ at: String, _ db: Database) throws {
        let step = try Int.fetchOne(db.cachedStatement(sql: """
            UPDATE orders SET status = ?, reason = coalesce(?, reason), updated_at = ?, steps = steps + 1
            WHERE order_id = ? RETURNING steps
            """), arguments: [status, reason, at, order])
        guard let step else { return }
        try db.cachedStatement(sql: "INSERT INTO order_timeline (order_id, step, status, reason, at) VALUES (?, ?, ?, ?, ?)")
            .execute(arguments: [order, step, status, reason, at])
    }
}

extension OrderHistory {
    public struct Money: Codable, Sendable, Equatable {
        public let amount: Int64, currency: String
        public init(amount: Int64, currency: String) { self.amount = amount; self.currency = currency }
    }

    public struct Summary: Codable, Sendable, Equatable, FetchableRecord {
        public let order: String, customer: String, status: String, reason: String?, total: Money, placedAt: String, updatedAt: String
        public init(row: Row) throws {
            order = row["order_id"]; customer = row["customer"]; status = row["status"]; reason = row["reason"]
            total = Money(amount: row["total_amount"], currency: row["total_currency"])
            placedAt = row["placed_at"]; updatedAt = row["updated_at"]
        }
    }

    public struct Line: Codable, Sendable, Equatable { public let sku: String, name: String, unitPrice: Money, quantity: Int }
    public struct Step: Codable, Sendable, Equatable { public let status: String, reason: String?, at: String }
    public struct Detail: Codable, Sendable, Equatable { public let summary: Summary, lines: [Line], timeline: [Step] }

    /// A customer's orders, newest first; `before` is the `order` of the last one of the previous page.
    public static func orders(_ db: Database, customer: String, before: String?, limit: Int) throws -> [Summary] {
        if let before, let position = try Int64.fetchOne(db, sql: "SELECT placed_position FROM orders WHERE order_id = ?", arguments: [before]) {
            return try Summary.fetchAll(db, sql: """
                SELECT * FROM orders WHERE customer = ? AND placed_position < ? ORDER BY placed_position DESC LIMIT ?
                """, arguments: [customer, position, limit])
        }
        return try Summary.fetchAll(db, sql: "SELECT * FROM orders WHERE customer = ? ORDER BY placed_position DESC LIMIT ?",
                                    arguments: [customer, limit])
    }

    public static func detail(_ db: Database, order: String) throws -> Detail? {
        guard let summary = try Summary.fetchOne(db, sql: "SELECT * FROM orders WHERE order_id = ?", arguments: [order]) else { return nil }
        let lines = try Row.fetchAll(db, sql: "SELECT * FROM order_lines WHERE order_id = ? ORDER BY line", arguments: [order]).map {
            Line(sku: $0["sku"], name: $0["name"], unitPrice: Money(amount: $0["unit_amount"], currency: $0["currency"]), quantity: $0["quantity"])
        }
        let timeline = try Row.fetchAll(db, sql: "SELECT * FROM order_timeline WHERE order_id = ? ORDER BY step", arguments: [order]).map {
            Step(status: $0["status"], reason: $0["reason"], at: $0["at"])
        }
        return Detail(summary: summary, lines: lines, timeline: timeline)
    }
}
