import EventSourcing
import EventStore
import Foundation
import TestSupport
import Testing

@Suite("Upcasting stored events")
struct UpcastingTests {
    enum ProductEvent: Sendable, Equatable { case added(ProductAdded) }

    /// Version 3: the price is `{amount, currency}`. Version 2 had `price` in minor units and `currency`;
    /// version 1 had `price` only, always in euros, and `title` instead of `name`.
    struct ProductAdded: Codable, Sendable, Equatable {
        struct Money: Codable, Sendable, Equatable { var amount: Int; var currency: String }
        var sku: String
        var name: String
        var price: Money
    }

    static let codec = EventCodec<ProductEvent>(
        .event("catalog.product-added", version: 3, embed: ProductEvent.added) { if case .added(let e) = $0 { e } else { nil } },
        upcasters: [
            Upcaster("catalog.product-added", from: 1) { json in
                var json = json
                json["name"] = json["title"]
                json["title"] = nil
                json["currency"] = "EUR"
                return json
            },
            Upcaster("catalog.product-added", from: 2) { json in
                var json = json
                json["price"] = ["amount": json["price"] ?? 0, "currency": json["currency"] ?? "EUR"]
                json["currency"] = nil
                return json
            },
        ]
    )

    @Test func eventsStoredUnderOlderSchemasAreReadInTheCurrentShape() async throws {
        try await withStore { store, _ in
            let stream = uniqueStream("product")
            try await store.append([
                NewEvent(type: "catalog.product-added", schemaVersion: 1, payload: Data(#"{"sku":"MUG-1","title":"Mug","price":1250}"#.utf8)),
                NewEvent(type: "catalog.product-added", schemaVersion: 2, payload: Data(#"{"sku":"MUG-2","name":"Big mug","price":1800,"currency":"USD"}"#.utf8)),
                try NewEvent(ProductEvent.added(.init(sku: "MUG-3", name: "Tiny mug", price: .init(amount: 500, currency: "GBP"))), codec: Self.codec),
            ], to: stream, expectedVersion: .noStream)

            let stored = try await store.readStream(stream)
            #expect(stored.map(\.schemaVersion) == [1, 2, 3])
            let events = try stored.map { try $0.decode(with: Self.codec) }
            #expect(events == [
                .added(.init(sku: "MUG-1", name: "Mug", price: .init(amount: 1250, currency: "EUR"))),
                .added(.init(sku: "MUG-2", name: "Big mug", price: .init(amount: 1800, currency: "USD"))),
                .added(.init(sku: "MUG-3", name: "Tiny mug", price: .init(amount: 500, currency: "GBP"))),
            ])
        }
    }

    @Test func anEventFromANewerSchemaIsAClearError() async throws {
        try await withStore { store, _ in
            let stream = uniqueStream("product")
            try await store.append([NewEvent(type: "catalog.product-added", schemaVersion: 4, payload: Data("{}".utf8))],
                                   to: stream, expectedVersion: .noStream)
            let stored = try #require(try await store.readStream(stream).first)
            #expect(throws: EventCodecError.unsupportedSchemaVersion(type: "catalog.product-added", stored: 4, current: 3)) {
                try stored.decode(with: Self.codec)
            }
        }
    }
}
