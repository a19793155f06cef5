import EventSourcing

/// How Billing's events are stored: stable type names and schema versions. Billing's own business: other
/// contexts see its published feed instead (`Contracts.BillingFeed`).
public enum BillingEvents {
    public static let payment = EventCodec<Payment.Event>(
        .event("billing.payment-authorised", embed: Payment.Event.authorised) { if case .authorised(let e) = $0 { e } else { nil } },
        .event("billing.payment-declined", embed: Payment.Event.declined) { if case .declined(let e) = $0 { e } else { nil } },
        .event("billing.payment-captured", embed: Payment.Event.captured) { if case .captured(let e) = $0 { e } else { nil } },
        .event("billing.payment-voided", embed: Payment.Event.voided) { if case .voided(let e) = $0 { e } else { nil } },
        .event("billing.payment-refunded", embed: Payment.Event.refunded) { if case .refunded(let e) = $0 { e } else { nil } }
    )

}
