import Billing
import Essentials
import EventStore
import Foundation
import GRDB
import Projections

/// Billing's payments: each order's payment with its status, and a ledger of authorised, captured, voided,
/// refunded and declined amounts per currency.
public struct PaymentLedger: Projection {
    public let name = "billing-payment-ledger"
    public let version = 1
    public let eventTypes = BillingEvents.payment.typeNames

    public init() {}

    public func createSchema(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TABLE payments (
                order_id TEXT PRIMARY KEY, status TEXT NOT NULL, currency TEXT NOT NULL,
                authorised INTEGER NOT NULL DEFAULT 0, captured INTEGER NOT NULL DEFAULT 0, refunded INTEGER NOT NULL DEFAULT 0,
                declines INTEGER NOT NULL DEFAULT 0, last_decline TEXT, updated_at TEXT NOT NULL
            );
            CREATE TABLE ledger (
                currency TEXT NOT NULL, entry TEXT NOT NULL, amount INTEGER NOT NULL, count INTEGER NOT NULL,
                PRIMARY KEY (currency, entry)
            );
            """)
    }

    public func apply(_ event: RecordedEvent, to db: Database) throws {
        let at = Timestamp.iso8601(event.recordedAt)
        switch try event.decode(with: BillingEvents.payment) {
        case .authorised(let e):
            try upsert(e.order, status: "authorised", currency: e.amount.currency.code, at: at, db)
            try db.cachedStatement(sql: "UPDATE payments SET authorised = ? WHERE order_id = ?").execute(arguments: [e.amount.minorUnits, e.order])
            try post("authorised", e.amount.minorUnits, e.amount.currency.code, db)
        case .declined(let e):
            try upsert(e.order, status: "declined", currency: e.amount.currency.code, at: at, db)
            try db.cachedStatement(sql: "UPDATE payments SET declines = declines + 1, last_decline = ? WHERE order_id = ?").execute(arguments: [e.reason, e.order])
            try post("declined", e.amount.minorUnits, e.amount.currency.code, db)
        case .captured(let e):
            try db.execute(sql: "UPDATE payments SET status = 'captured', captured = captured + ?, updated_at = ? WHERE order_id = ?",
                           arguments: [e.amount.minorUnits, at, e.order])
            try post("captured", e.amount.minorUnits, e.amount.currency.code, db)
        case .voided(let e):
            if let (amount, currency) = try authorised(e.order, db) {
                try post("voided", amount, currency, db)
            }
            try db.cachedStatement(sql: "UPDATE payments SET status = 'voided', updated_at = ? WHERE order_id = ?").execute(arguments: [at, e.order])
        case .refunded(let e):
            try db.execute(sql: "UPDATE payments SET status = 'refunded', refunded = refunded + ?, updated_at = ? WHERE order_id = ?",
                           arguments: [e.amount.minorUnits, at, e.order])
            try post("refunded", e.amount.minorUnits, e.amount.currency.code, db)
        }
    }

    private func upsert(_ order: String, status: String, currency: String, at: String, _ db: Database) throws {
        try db.cachedStatement(sql: """
            INSERT INTO payments (order_id, status, currency, updated_at) VALUES (?, ?, ?, ?)
            ON CONFLICT (order_id) DO UPDATE SET status = excluded.status, updated_at = excluded.updated_at
            """).execute(arguments: [order, status, currency, at])
    }

    private func authorised(_ order: String, _ db: Database) throws -> (Int64, String)? {
        try GRDB.Row.fetchOne(db, sql: "SELECT authorised, currency FROM payments WHERE order_id = ?", arguments: [order])
            .map { ($0["authorised"], $0["currency"]) }
    }

    private func post(_ entry: String, _ amount: Int64, _ currency: String, _ db: Database) throws {
        try db.cachedStatement(sql: """
            INSERT INTO ledger VALUES (?, ?, ?, 1)
            ON CONFLICT (currency, entry) DO UPDATE SET amount = amount + excluded.amount, count = count + 1
            """).execute(arguments: [currency, entry, amount])
    }
}

extension PaymentLedger {
    public struct Payment: Codable, Sendable, Equatable {
        public let order: String, status: String, currency: String, authorised: Int64, captured: Int64, refunded: Int64
        public let declines: Int, lastDecline: String?
    }

    public struct Entry: Codable, Sendable, Equatable {
        public let currency: String, entry: String, amount: Int64, count: Int
        public init(currency: String, entry: String, amount: Int64, count: Int) {
            self.currency = currency; self.entry = entry; self.amount = amount; self.count = count
        }
    }

    /// Payments in order-id order, after `order`.
    public static func payments(_ db: Database, after order: String?, limit: Int) throws -> [Payment] {
        try GRDB.Row.fetchAll(db, sql: "SELECT * FROM payments WHERE order_id > ? ORDER BY order_id LIMIT ?",
                              arguments: [order ?? "", limit]).map {
            Payment(order: $0["order_id"], status: $0["status"], currency: $0["currency"], authorised: $0["authorised"],
                    captured: $0["captured"], refunded: $0["refunded"], declines: $0["declines"], lastDecline: $0["last_decline"])
        }
    }

    public static func ledger(_ db: Database) throws -> [Entry] {
        try GRDB.Row.fetchAll(db, sql: "SELECT * FROM ledger ORDER BY currency, entry").map {
            Entry(currency: $0["currency"], entry: $0["entry"], amount: $0["amount"], count: $0["count"])
        }
    }
}
