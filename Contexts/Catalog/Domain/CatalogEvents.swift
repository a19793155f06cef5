import EventSourcing

/// How Catalog's events are stored: stable type names and schema versions. Catalog's own business: other
/// contexts see its published feed instead (`Contracts.CatalogFeed`).
public enum CatalogEvents {
    public static let product = EventCodec<Product.Event>(
        .event("catalog.product-added", embed: Product.Event.added) { if case .added(let e) = $0 { e } else { nil } },
        .event("catalog.product-renamed", embed: Product.Event.renamed) { if case .renamed(let e) = $0 { e } else { nil } },
        .event("catalog.price-changed", embed: Product.Event.priceChanged) { if case .priceChanged(let e) = $0 { e } else { nil } },
        .event("catalog.product-discontinued", embed: Product.Event.discontinued) { if case .discontinued(let e) = $0 { e } else { nil } }
    )

    public static let stock = EventCodec<Stock.Event>(
        .event("catalog.stock-received", embed: Stock.Event.received) { if case .received(let e) = $0 { e } else { nil } },
        .event("catalog.stock-reserved", embed: Stock.Event.reserved) { if case .reserved(let e) = $0 { e } else { nil } },
        .event("catalog.reservation-released", embed: Stock.Event.released) { if case .released(let e) = $0 { e } else { nil } },
        .event("catalog.reservation-committed", embed: Stock.Event.committed) { if case .committed(let e) = $0 { e } else { nil } }
    )

}
