import Billing
import EventStore
import Foundation
import GRDB
import OrderHistory
import Ordering
import PaymentLedger
import Projections
import SalesSummary
import SharedKernel
import TestSupport
import Testing

func eur(_ cents: Int64) -> Money { try! Money(minorUnits: cents, currency: .eur) }

/// Appends `events` to the order's stream.
func record(_ events: [Order.Event], order: String, in store: EventStore) async throws {
    let stream = try StreamName(category: "order", id: order)
    try await store.append(try events.map { try NewEvent($0, codec: OrderingEvents.order) }, to: stream, expectedVersion: .any)
}

func caughtUp(_ projection: any Projection, _ store: EventStore, batchSize: Int = 500) async throws -> Projector {
    let projector = try Projector(projection, store: store, directory: scratchViews(), batchSize: batchSize, logger: TestDatabase.logger)
    let head = try await store.lastCommittedPosition()
    await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { try await projector.run() }
        defer { group.cancelAll() }
        #expect(await projector.wait(until: head, timeout: .seconds(30)))
    }
    return projector
}

@Suite("Read models")
struct ReadModelsTests {
    func placed(_ order: String, _ lines: [(String, Int64, Int)]) -> Order.Event {
        let lines = lines.map { Order.Line(sku: $0.0, name: $0.0, unitPrice: eur($0.1), quantity: $0.2) }
        let total = lines.reduce(eur(0)) { try! $0.adding(try! $1.unitPrice.multiplied(by: $1.quantity)) }
        return .placed(.init(order: order, customer: "kim", lines: lines, total: total))
    }

    @Test(.timeLimit(.minutes(1)))
    func theSalesSummaryCountsConfirmedOrdersPerProductAndDay() async throws {
        try await withStore { store, _ in
            try await record([placed("o-1", [("MUG-001", 1250, 2), ("TEE-001", 2200, 1)]), .confirmed(.init(order: "o-1"))], order: "o-1", in: store)
            try await record([placed("o-2", [("MUG-001", 1250, 1)]), .confirmed(.init(order: "o-2"))], order: "o-2", in: store)
            try await record([placed("o-3", [("MUG-001", 1250, 5)])], order: "o-3", in: store)  // never confirmed
            try await record([placed("o-4", [("TEE-001", 2200, 3)]), .confirmed(.init(order: "o-4")),
                              .cancelled(.init(order: "o-4", reason: "changed my mind", refundRequired: true))], order: "o-4", in: store)
            let sales = try await caughtUp(SalesSummary(), store)
            let today = String(Date().formatted(.iso8601).prefix(10))
            let rows = try await sales.read { try SalesSummary.sales($0, from: "2000-01-01", to: "2999-12-31") }
            #expect(rows == [
                .init(day: today, sku: "MUG-001", units: 3, revenue: 3750, currency: "EUR"),
                .init(day: today, sku: "TEE-001", units: 1, revenue: 2200, currency: "EUR"),
            ])
        }
    }

    /// Events stored under the names `ordering.order-stock-requested` and `-payment-requested` had before they were
    /// renamed (`order-awaiting-stock`, `-awaiting-payment`) are read as the renamed events: by the order's decider
    /// and by the order history, from a real store.
    @Test(.timeLimit(.minutes(1)))
    func eventsStoredUnderTheirOldNamesAreReadAsTheRenamedOnes() async throws {
        try await withStore { store, _ in
            let stream = try StreamName(category: "order", id: "o-old")
            let placedEvent = try NewEvent(placed("o-old", [("MUG-001", 1250, 1)]), codec: OrderingEvents.order)
            let old = [("ordering.order-awaiting-stock", #"{"order":"o-old"}"#), ("ordering.order-awaiting-payment", #"{"order":"o-old"}"#)]
                .map { NewEvent(type: $0.0, payload: Data($0.1.utf8)) }
            try await store.append([placedEvent] + old, to: stream, expectedVersion: .noStream)
            let stored = try await store.readStream(stream)
            #expect(stored.map(\.type) == ["ordering.order-placed", "ordering.order-awaiting-stock", "ordering.order-awaiting-payment"])
            let events = try stored.map { try OrderingEvents.order.decode(type: $0.type, schemaVersion: $0.schemaVersion, payload: $0.payload) }
            #expect(events.dropFirst() == [.stockRequested(.init(order: "o-old")), .paymentRequested(.init(order: "o-old"))])
            #expect(Order.replay(events).status == .awaitingPayment)
            let history = try await caughtUp(OrderHistory(), store)
            let detail = try #require(try await history.read { try OrderHistory.detail($0, order: "o-old") })
            #expect(detail.timeline.map(\.status) == ["placed", "awaiting-stock", "awaiting-payment"])
            // New events are stored under the new names.
            #expect(try OrderingEvents.order.encode(.stockRequested(.init(order: "o-new"))).type == "ordering.order-stock-requested")
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func theOrderHistoryKeepsEachOrdersTimelineWithItsReasons() async throws {
        try await withStore { store, _ in
            try await record([placed("o-1", [("MUG-001", 1250, 2)]), .stockRequested(.init(order: "o-1")),
                              .rejected(.init(order: "o-1", reason: "not enough stock of MUG-001"))], order: "o-1", in: store)
            try await record([placed("o-2", [("TEE-001", 2200, 1)])], order: "o-2", in: store)
            let history = try await caughtUp(OrderHistory(), store)
            let orders = try await history.read { try OrderHistory.orders($0, customer: "kim", before: nil, limit: 10) }
            #expect(orders.map(\.order) == ["o-2", "o-1"])
            let older = try await history.read { try OrderHistory.orders($0, customer: "kim", before: "o-2", limit: 10) }
            #expect(older.map(\.order) == ["o-1"])
            let detail = try #require(try await history.read { try OrderHistory.detail($0, order: "o-1") })
            #expect(detail.summary.status == "rejected" && detail.summary.reason == "not enough stock of MUG-001")
            #expect(detail.summary.total == .init(amount: 2500, currency: "EUR"))
            #expect(detail.lines.map(\.sku) == ["MUG-001"])
            #expect(detail.timeline.map(\.status) == ["placed", "awaiting-stock", "rejected"])
            #expect(detail.timeline.last?.reason == "not enough stock of MUG-001")
        }
    }

    /// The order history writes an order placed in a batch once, with what it became by the batch's end: the
    /// view must not depend on where batches end. (Five catch-ups, one of them an event a batch: on two cores busy
    /// with the whole suite, forty orders took past a minute.)
    @Test(.timeLimit(.minutes(2)))
    func theOrderHistoryIsTheSameWhateverTheBatches() async throws {
        try await withStore { store, _ in
            for index in 0..<24 {
                let order = "o-\(index)"
                var events = [placed(order, [("MUG-001", 1250, 1 + index % 3)]), .stockRequested(.init(order: order))]
                switch index % 4 {
                case 0: events += [.rejected(.init(order: order, reason: "no stock \(index)"))]
                case 1: events += [.paymentRequested(.init(order: order)), .confirmed(.init(order: order)), .shipped(.init(order: order))]
                case 2: events += [.cancelled(.init(order: order, reason: "changed my mind \(index)", refundRequired: false))]
                default: break
                }
                // Some orders' events come in two appends, with other orders' in between.
                try await record(Array(events.prefix(2)), order: order, in: store)
                if index.isMultiple(of: 3) { try await record([placed("x-\(index)", [("TEE-001", 900, 1)])], order: "x-\(index)", in: store) }
                if events.count > 2 { try await record(Array(events.dropFirst(2)), order: order, in: store) }
            }
            var checksums: [String] = []
            for size in [1, 3, 7, 1000] { checksums.append(try await caughtUp(OrderHistory(), store, batchSize: size).contentChecksum()) }
            #expect(Set(checksums).count == 1, "\(checksums)")
            let history = try await caughtUp(OrderHistory(), store, batchSize: 7)
            let detail = try #require(try await history.read { try OrderHistory.detail($0, order: "o-2") })
            #expect(detail.summary.status == "cancelled" && detail.summary.reason == "changed my mind 2")
            #expect(detail.timeline.map(\.status) == ["placed", "awaiting-stock", "cancelled"])
        }
    }

    @Test(.timeLimit(.minutes(1)))
    func theLedgerAddsUpEveryKindOfPaymentEvent() async throws {
        try await withStore { store, _ in
            func pay(_ order: String, _ events: [Payment.Event]) async throws {
                try await store.append(try events.map { try NewEvent($0, codec: BillingEvents.payment) },
                                       to: try StreamName(category: "payment", id: order), expectedVersion: .any)
            }
            try await pay("o-1", [.authorised(.init(order: "o-1", authorisation: "a-1", amount: eur(4499))),
                                  .captured(.init(order: "o-1", amount: eur(4499))), .refunded(.init(order: "o-1", amount: eur(1000)))])
            try await pay("o-2", [.declined(.init(order: "o-2", amount: eur(500), reason: "card declined"))])
            try await pay("o-3", [.authorised(.init(order: "o-3", authorisation: "a-3", amount: eur(300))), .voided(.init(order: "o-3"))])
            let ledger = try await caughtUp(PaymentLedger(), store)
            let entries = try await ledger.read { try PaymentLedger.ledger($0) }
            #expect(entries == [
                .init(currency: "EUR", entry: "authorised", amount: 4799, count: 2),
                .init(currency: "EUR", entry: "captured", amount: 4499, count: 1),
                .init(currency: "EUR", entry: "declined", amount: 500, count: 1),
                .init(currency: "EUR", entry: "refunded", amount: 1000, count: 1),
                .init(currency: "EUR", entry: "voided", amount: 300, count: 1),
            ])
            let payments = try await ledger.read { try PaymentLedger.payments($0, after: nil, limit: 10) }
            #expect(payments.map(\.status) == ["refunded", "declined", "voided"])
            #expect(payments[1].lastDecline == "card declined")
        }
    }
}
