import Essentials
import EventStore
import Foundation
import GRDB
import Ordering
import Projections

/// Ordering's orders as customers and operators look at them: each customer's orders, newest first, and one
/// order's lines, total, status and timeline (every change of status, with its reason and time).
public struct OrderHistory: Projection {
    public let name = "ordering-order-history"
    public let version = 3
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
                placed_position INTEGER NOT NULL
            );
            CREATE INDEX orders_by_customer ON orders (customer, placed_position DESC);
            CREATE TABLE order_lines (
                order_id TEXT NOT NULL, line INTEGER NOT NULL, sku TEXT NOT NULL, name TEXT NOT NULL,
                unit_amount INTEGER NOT NULL, currency TEXT NOT NULL, quantity INTEGER NOT NULL,
                PRIMARY KEY (order_id, line)
            );
            CREATE TABLE order_timeline (
                order_id TEXT NOT NULL, position INTEGER NOT NULL, status TEXT NOT NULL, reason TEXT, at TEXT NOT NULL,
                PRIMARY KEY (order_id, position)
            );
            """)
    }

    /// The decoded event, when it was recorded, and its position (decoded while the previous batch is written).
    public struct Prepared: Sendable {
        let event: Order.Event, at: String, position: Int64
    }

    public func prepare(_ event: RecordedEvent) throws -> Prepared {
        Prepared(event: try event.decode(with: OrderingEvents.order), at: Timestamp.iso8601(event.recordedAt), position: event.globalPosition)
    }

    public func apply(_ prepared: Prepared, to db: Database) throws {
        try apply(batch: [prepared], to: db)
    }

    /// An order placed in the batch is written once, with what it became by the batch's end, rather than once
    /// and then again for each change of status: one order's events mostly come together (one transaction
    /// appends them), so a rebuild writes about half the statements.
    public func apply(batch: [Prepared], to db: Database) throws {
        var placed: [String: Placed] = [:]
        for prepared in batch {
            let (order, status, reason) = prepared.change
            if case .placed(let e) = prepared.event {
                placed[order] = Placed(event: e, position: prepared.position, status: status, reason: nil, placedAt: prepared.at, updatedAt: prepared.at)
                for (index, line) in e.lines.enumerated() {
                    try db.cachedStatement(sql: "INSERT OR REPLACE INTO order_lines VALUES (?, ?, ?, ?, ?, ?, ?)").execute(arguments: [
                        e.order, index + 1, line.sku, line.name, line.unitPrice.minorUnits, line.unitPrice.currency.code, line.quantity])
                }
                try timeline(order, status, reason, prepared, db)
            } else if var row = placed[order] {
                row.status = status
                row.reason = reason ?? row.reason
                row.updatedAt = prepared.at
                placed[order] = row
                try timeline(order, status, reason, prepared, db)
            } else {
                try db.cachedStatement(sql: "UPDATE orders SET status = ?, reason = coalesce(?, reason), updated_at = ? WHERE order_id = ?")
                    .execute(arguments: [status, reason, prepared.at, order])
                if db.changesCount > 0 { try timeline(order, status, reason, prepared, db) }
            }
        }
        for row in placed.values {
            let e = row.event
            try db.cachedStatement(sql: """
                INSERT OR REPLACE INTO orders (order_id, customer, status, reason, total_amount, total_currency, placed_at, updated_at, placed_position)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """).execute(arguments: [e.order, e.customer, row.status, row.reason, e.total.minorUnits, e.total.currency.code,
                                         row.placedAt, row.updatedAt, row.position])
        }
    }

    /// An order placed in the batch being applied, as it stands so far.
    private struct Placed {
        let event: Order.OrderPlaced, position: Int64
        var status: String, reason: String?
        let placedAt: String
        var updatedAt: String
    }

    /// A line of the order's timeline, keyed by the event's position (which orders it).
    private func timeline(_ order: String, _ status: String, _ reason: String?, _ prepared: Prepared, _ db: Database) throws {
        try db.cachedStatement(sql: "INSERT INTO order_timeline VALUES (?, ?, ?, ?, ?)")
            .execute(arguments: [order, prepared.position, status, reason, prepared.at])
    }
}

extension OrderHistory.Prepared {
    /// The order it changes, its new status, and the reason given.
    var change: (order: String, status: String, reason: String?) {
        switch event {
        case .placed(let e): (e.order, "placed", nil)
        case .stockRequested(let e): (e.order, "awaiting-stock", nil)
        case .paymentRequested(let e): (e.order, "awaiting-payment", nil)
        case .confirmed(let e): (e.order, "confirmed", nil)
        case .shipped(let e): (e.order, "shipped", nil)
        case .rejected(let e): (e.order, "rejected", e.reason)
        case .cancelled(let e): (e.order, "cancelled", e.reason)
        }
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
        let timeline = try Row.fetchAll(db, sql: "SELECT * FROM order_timeline WHERE order_id = ? ORDER BY position", arguments: [order]).map {
            Step(status: $0["status"], reason: $0["reason"], at: $0["at"])
        }
        return Detail(summary: summary, lines: lines, timeline: timeline)
    }
}
