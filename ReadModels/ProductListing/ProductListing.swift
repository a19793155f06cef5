import Catalog
import EventStore
import Foundation
import GRDB
import Projections

/// Catalog's product listing: every product with its price and available stock, looked up by SKU, paged in
/// SKU order, and searched by name and description (SQLite FTS5). Fed by Catalog's product and stock events.
public struct ProductListing: Projection {
    public let name = "catalog-product-listing"
    public let version = 1
    public let eventTypes = CatalogEvents.product.typeNames.union(CatalogEvents.stock.typeNames)

    public init() {}

    public func createSchema(_ db: Database) throws {
        try db.execute(sql: """
            CREATE TABLE products (
                sku            TEXT    PRIMARY KEY,
                name           TEXT    NOT NULL,
                description    TEXT    NOT NULL,
                price_amount   INTEGER NOT NULL,
                price_currency TEXT    NOT NULL,
                discontinued   INTEGER NOT NULL DEFAULT 0,
                on_hand        INTEGER NOT NULL DEFAULT 0,
                reserved       INTEGER NOT NULL DEFAULT 0
            );
            CREATE VIRTUAL TABLE product_search USING fts5(
                sku UNINDEXED, name, description, tokenize = 'unicode61 remove_diacritics 2'
            );
            """)
    }

    public func apply(_ event: RecordedEvent, to db: Database) throws {
        if let product = try CatalogEvents.product.decodeIfKnown(type: event.type, schemaVersion: event.schemaVersion, payload: event.payload) {
            try apply(product, db)
        } else if let stock = try CatalogEvents.stock.decodeIfKnown(type: event.type, schemaVersion: event.schemaVersion, payload: event.payload) {
            try apply(stock, db)
        }
    }

    private func apply(_ event: Product.Event, _ db: Database) throws {
        switch event {
        case .added(let e):
            try db.cachedStatement(sql: """
                INSERT INTO products (sku, name, description, price_amount, price_currency) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (sku) DO UPDATE SET name = excluded.name, description = excluded.description,
                    price_amount = excluded.price_amount, price_currency = excluded.price_currency
                """).execute(arguments: [e.sku.rawValue, e.name, e.description, e.price.minorUnits, e.price.currency.code])
            try db.cachedStatement(sql: "DELETE FROM product_search WHERE sku = ?").execute(arguments: [e.sku.rawValue])
            try db.execute(sql: "INSERT INTO product_search (sku, name, description) VALUES (?, ?, ?)",
                           arguments: [e.sku.rawValue, e.name, e.description])
        case .renamed(let e):
            try db.cachedStatement(sql: "UPDATE products SET name = ? WHERE sku = ?").execute(arguments: [e.name, e.sku.rawValue])
            try db.cachedStatement(sql: "UPDATE product_search SET name = ? WHERE sku = ?").execute(arguments: [e.name, e.sku.rawValue])
        case .priceChanged(let e):
            try db.execute(sql: "UPDATE products SET price_amount = ?, price_currency = ? WHERE sku = ?",
                           arguments: [e.price.minorUnits, e.price.currency.code, e.sku.rawValue])
        case .discontinued(let e):
            try db.cachedStatement(sql: "UPDATE products SET discontinued = 1 WHERE sku = ?").execute(arguments: [e.sku.rawValue])
        }
    }

    private func apply(_ event: Stock.Event, _ db: Database) throws {
        switch event {
        case .received(let e):
            try db.cachedStatement(sql: "UPDATE products SET on_hand = on_hand + ? WHERE sku = ?").execute(arguments: [e.quantity, e.sku.rawValue])
        case .reserved(let e):
            try db.cachedStatement(sql: "UPDATE products SET reserved = reserved + ? WHERE sku = ?").execute(arguments: [e.quantity, e.sku.rawValue])
        case .released(let e):
            try db.cachedStatement(sql: "UPDATE products SET reserved = reserved - ? WHERE sku = ?").execute(arguments: [e.quantity, e.sku.rawValue])
        case .committed(let e):
            try db.execute(sql: "UPDATE products SET reserved = reserved - ?, on_hand = on_hand - ? WHERE sku = ?",
                           arguments: [e.quantity, e.quantity, e.sku.rawValue])
        }
    }
}

extension ProductListing {
    /// One product as the listing shows it.
    public struct Item: Codable, Sendable, Equatable, FetchableRecord {
        public struct Price: Codable, Sendable, Equatable { public let amount: Int64, currency: String }
        public let sku: String, name: String, description: String, price: Price, discontinued: Bool
        public let available: Int, onHand: Int, reserved: Int

        public init(row: Row) throws {
            sku = row["sku"]
            name = row["name"]
            description = row["description"]
            price = Price(amount: row["price_amount"], currency: row["price_currency"])
            discontinued = row["discontinued"]
            onHand = row["on_hand"]
            reserved = row["reserved"]
            available = onHand - reserved
        }
    }

    /// Products in SKU order, after `sku`.
    public static func page(_ db: Database, after sku: String?, limit: Int) throws -> [Item] {
        try Item.fetchAll(db, sql: "SELECT * FROM products WHERE sku > ? ORDER BY sku LIMIT ?", arguments: [sku ?? "", limit])
    }

    public static func item(_ db: Database, sku: String) throws -> Item? {
        try Item.fetchOne(db, sql: "SELECT * FROM products WHERE sku = ?", arguments: [sku])
    }

    /// Products whose name or description has words starting with the words of `text`, best matches first.
    public static func search(_ db: Database, _ text: String, limit: Int) throws -> [Item] {
        guard let query = ftsQuery(text) else { return [] }
        return try Item.fetchAll(db, sql: """
            SELECT products.* FROM product_search JOIN products ON products.sku = product_search.sku
            WHERE product_search MATCH ? ORDER BY bm25(product_search, 0, 10, 1), products.sku LIMIT ?
            """, arguments: [query, limit])
    }

    /// The words of `text` as an FTS5 query of prefixes, all required; `nil` without words. User text never
    /// reaches FTS5's query syntax: each word is quoted.
    static func ftsQuery(_ text: String) -> String? {
        let words = text.split { !$0.isLetter && !$0.isNumber }.prefix(8)
        guard !words.isEmpty else { return nil }
        return words.map { "\"\($0)\"*" }.joined(separator: " ")
    }
}
