import EventSourcing

/// How Ordering's events are stored: stable type names and schema versions. Ordering's own business: other
/// contexts see its published feed instead (`Contracts.OrderingFeed`).
public enum OrderingEvents {
    public static let cart = EventCodec<Cart.Event>(
        .event("ordering.item-added", embed: Cart.Event.itemAdded) { if case .itemAdded(let e) = $0 { e } else { nil } },
        .event("ordering.quantity-changed", embed: Cart.Event.quantityChanged) { if case .quantityChanged(let e) = $0 { e } else { nil } },
        .event("ordering.item-removed", embed: Cart.Event.itemRemoved) { if case .itemRemoved(let e) = $0 { e } else { nil } },
        .event("ordering.cart-cleared", embed: Cart.Event.cleared) { if case .cleared(let e) = $0 { e } else { nil } },
        .event("ordering.cart-checked-out", embed: Cart.Event.checkedOut) { if case .checkedOut(let e) = $0 { e } else { nil } }
    )

    public static let order = EventCodec<Order.Event>(
        .event("ordering.order-placed", embed: Order.Event.placed) { if case .placed(let e) = $0 { e } else { nil } },
        .event("ordering.order-stock-requested", embed: Order.Event.stockRequested) { if case .stockRequested(let e) = $0 { e } else { nil } },
        .event("ordering.order-payment-requested", embed: Order.Event.paymentRequested) { if case .paymentRequested(let e) = $0 { e } else { nil } },
        .event("ordering.order-confirmed", embed: Order.Event.confirmed) { if case .confirmed(let e) = $0 { e } else { nil } },
        .event("ordering.order-shipped", embed: Order.Event.shipped) { if case .shipped(let e) = $0 { e } else { nil } },
        .event("ordering.order-rejected", embed: Order.Event.rejected) { if case .rejected(let e) = $0 { e } else { nil } },
        .event("ordering.order-cancelled", embed: Order.Event.cancelled) { if case .cancelled(let e) = $0 { e } else { nil } },
        // Named for the states they led to until they were renamed for the facts they are; stored events keep their names.
        renamed: ["ordering.order-awaiting-stock": "ordering.order-stock-requested",
                  "ordering.order-awaiting-payment": "ordering.order-payment-requested"]
    )

}
