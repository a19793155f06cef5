import Ordering
import SharedKernel
import Testing

@Suite("Order")
struct OrderTests {
    let id = "order-1"
    let lines = [
        Order.Line(sku: "MUG-001", name: "Mug", unitPrice: try! Money(minorUnits: 1250, currency: .eur), quantity: 2),
        Order.Line(sku: "TEE-001", name: "Tee", unitPrice: try! Money(minorUnits: 1999, currency: .eur), quantity: 1),
    ]
    var placed: Order.Event { .placed(.init(order: id, customer: "kim", lines: lines, total: try! Money(minorUnits: 4499, currency: .eur))) }
    var stockRequested: Order.Event { .stockRequested(.init(order: id)) }
    var paymentRequested: Order.Event { .paymentRequested(.init(order: id)) }
    var confirmed: Order.Event { .confirmed(.init(order: id)) }
    var shipped: Order.Event { .shipped(.init(order: id)) }

    @Test func isPlacedWithItsTotal() throws {
        #expect(try Order.decide(.place(order: id, customer: "kim", lines: lines), given: []) == [placed])
        #expect(throws: OrderingError.orderAlreadyPlaced(id)) { try Order.decide(.place(order: id, customer: "kim", lines: lines), given: [placed]) }
        #expect(throws: OrderingError.emptyCart) { try Order.decide(.place(order: id, customer: "kim", lines: []), given: []) }
    }

    @Test func refusesMixedCurrenciesAndBadLines() throws {
        let dollars = Order.Line(sku: "CAP-001", name: "Cap", unitPrice: try Money(minorUnits: 900, currency: .usd), quantity: 1)
        #expect(throws: OrderingError.invalidMoney(.currencyMismatch(expected: .eur, actual: .usd))) {
            try Order.decide(.place(order: id, customer: "kim", lines: lines + [dollars]), given: [])
        }
        let zero = Order.Line(sku: "MUG-001", name: "Mug", unitPrice: lines[0].unitPrice, quantity: 0)
        #expect(throws: OrderingError.invalidQuantity(0)) { try Order.decide(.place(order: id, customer: "kim", lines: [zero]), given: []) }
        let dear = Order.Line(sku: "GOLD-1", name: "Gold", unitPrice: try Money(minorUnits: Money.maximumMinorUnits, currency: .eur), quantity: 2)
        #expect(throws: OrderingError.self) { try Order.decide(.place(order: id, customer: "kim", lines: [dear]), given: []) }
    }

    @Test func goesThroughItsStepsAndEachStepIsIdempotent() throws {
        #expect(try Order.decide(.awaitStock(order: id), given: [placed]) == [stockRequested])
        #expect(try Order.decide(.awaitStock(order: id), given: [placed, stockRequested]).isEmpty)
        #expect(try Order.decide(.stockReserved(order: id), given: [placed, stockRequested]) == [paymentRequested])
        #expect(try Order.decide(.stockReserved(order: id), given: [placed, stockRequested, paymentRequested]).isEmpty)
        #expect(try Order.decide(.confirm(order: id), given: [placed, stockRequested, paymentRequested]) == [confirmed])
        #expect(try Order.decide(.confirm(order: id), given: [placed, stockRequested, paymentRequested, confirmed]).isEmpty)
        #expect(try Order.decide(.ship(order: id), given: [placed, stockRequested, paymentRequested, confirmed]) == [shipped])
        #expect(Order.replay([placed, stockRequested, paymentRequested, confirmed, shipped]).status == .shipped)
    }

    @Test func stepsOutOfOrderAreRefused() {
        #expect(throws: OrderingError.notAllowed("confirm", status: .placed)) { try Order.decide(.confirm(order: id), given: [placed]) }
        #expect(throws: OrderingError.notAllowed("ship", status: .awaitingPayment)) {
            try Order.decide(.ship(order: id), given: [placed, stockRequested, paymentRequested])
        }
        #expect(throws: OrderingError.notAllowed("take payment for", status: .placed)) { try Order.decide(.stockReserved(order: id), given: [placed]) }
        #expect(throws: OrderingError.unknownOrder(id)) { try Order.decide(.confirm(order: id), given: []) }
    }

    @Test func isRejectedWithAReasonBeforeConfirmationOnly() throws {
        let rejected = Order.Event.rejected(.init(order: id, reason: "out of stock: MUG-001"))
        #expect(try Order.decide(.reject(order: id, reason: " out of stock: MUG-001 "), given: [placed, stockRequested]) == [rejected])
        #expect(try Order.decide(.reject(order: id, reason: "again"), given: [placed, rejected]).isEmpty)
        #expect(throws: OrderingError.notAllowed("reject", status: .confirmed)) {
            try Order.decide(.reject(order: id, reason: "late"), given: [placed, stockRequested, paymentRequested, confirmed])
        }
        #expect(throws: OrderingError.invalidReason("it is empty")) { try Order.decide(.reject(order: id, reason: "  "), given: [placed]) }
        #expect(Order.replay([placed, rejected]).reason == "out of stock: MUG-001")
    }

    @Test func isCancelledWithARefundOnlyAfterConfirmation() throws {
        #expect(try Order.decide(.cancel(order: id, reason: "changed my mind"), given: [placed, stockRequested])
                == [.cancelled(.init(order: id, reason: "changed my mind", refundRequired: false))])
        let afterConfirmation = [placed, stockRequested, paymentRequested, confirmed]
        let cancelled = Order.Event.cancelled(.init(order: id, reason: "changed my mind", refundRequired: true))
        #expect(try Order.decide(.cancel(order: id, reason: "changed my mind"), given: afterConfirmation) == [cancelled])
        #expect(try Order.decide(.cancel(order: id, reason: "again"), given: afterConfirmation + [cancelled]).isEmpty)
        #expect(Order.replay(afterConfirmation + [cancelled]).refundRequired)
        #expect(throws: OrderingError.notAllowed("cancel", status: .shipped)) {
            try Order.decide(.cancel(order: id, reason: "too late"), given: afterConfirmation + [shipped])
        }
        #expect(throws: OrderingError.notAllowed("cancel", status: .rejected)) {
            try Order.decide(.cancel(order: id, reason: "x"), given: [placed, .rejected(.init(order: id, reason: "no stock"))])
        }
        #expect(throws: OrderingError.invalidReason("longer than 500 characters")) {
            try Order.decide(.cancel(order: id, reason: String(repeating: "r", count: 501)), given: [placed])
        }
    }
}
