import Foundation
import Catalog
import Testing

@Suite("Stock")
struct StockTests {
    let mug = sku("MUG-001")
    var ten: Stock.Event { .received(.init(sku: mug, quantity: 10)) }
    func reserved(_ order: String, _ quantity: Int) -> Stock.Event { .reserved(.init(sku: mug, order: order, quantity: quantity)) }

    @Test func receivesPositiveQuantitiesUpToTheLimit() throws {
        #expect(try Stock.decide(.receive(mug, quantity: 10), given: []) == [ten])
        for bad in [0, -1, Stock.maximumQuantity + 1] {
            #expect(throws: CatalogError.invalidQuantity(bad)) { try Stock.decide(.receive(mug, quantity: bad), given: []) }
        }
        let full = Stock.Event.received(.init(sku: mug, quantity: Stock.maximumQuantity))
        #expect(throws: CatalogError.stockLimitExceeded(sku: mug, limit: Stock.maximumQuantity)) {
            try Stock.decide(.receive(mug, quantity: 1), given: [full])
        }
    }

    @Test func reservesWhatIsAvailableAndNeverMore() throws {
        #expect(try Stock.decide(.reserve(mug, order: "o-1", quantity: 4), given: [ten]) == [reserved("o-1", 4)])
        #expect(throws: CatalogError.insufficientStock(sku: mug, requested: 7, available: 6)) {
            try Stock.decide(.reserve(mug, order: "o-2", quantity: 7), given: [ten, reserved("o-1", 4)])
        }
        #expect(throws: CatalogError.insufficientStock(sku: mug, requested: 1, available: 0)) {
            try Stock.decide(.reserve(mug, order: "o-1", quantity: 1), given: [])
        }
        let state = Stock.replay([ten, reserved("o-1", 4), reserved("o-2", 6)])
        #expect(state.available == 0 && state.onHand == 10 && state.reserved == 10)
    }

    @Test func reservingForTheSameOrderTwiceChangesNothing() throws {
        #expect(try Stock.decide(.reserve(mug, order: "o-1", quantity: 4), given: [ten, reserved("o-1", 4)]).isEmpty)
        #expect(throws: CatalogError.reservationMismatch(sku: mug, order: "o-1", reserved: 4, requested: 5)) {
            try Stock.decide(.reserve(mug, order: "o-1", quantity: 5), given: [ten, reserved("o-1", 4)])
        }
    }

    @Test func releasesAReservationOnceAndReleasingAgainChangesNothing() throws {
        let released = Stock.Event.released(.init(sku: mug, order: "o-1", quantity: 4))
        #expect(try Stock.decide(.release(mug, order: "o-1"), given: [ten, reserved("o-1", 4)]) == [released])
        #expect(try Stock.decide(.release(mug, order: "o-1"), given: [ten, reserved("o-1", 4), released]).isEmpty)
        #expect(try Stock.decide(.release(mug, order: "never"), given: [ten]).isEmpty)
        #expect(Stock.replay([ten, reserved("o-1", 4), released]).available == 10)
    }

    @Test func commitsAReservationOnceAndTheUnitsLeave() throws {
        let committed = Stock.Event.committed(.init(sku: mug, order: "o-1", quantity: 4))
        #expect(try Stock.decide(.commit(mug, order: "o-1"), given: [ten, reserved("o-1", 4)]) == [committed])
        #expect(try Stock.decide(.commit(mug, order: "o-1"), given: [ten, reserved("o-1", 4), committed]).isEmpty)
        #expect(throws: CatalogError.unknownReservation(sku: mug, order: "o-9")) { try Stock.decide(.commit(mug, order: "o-9"), given: [ten]) }
        #expect(throws: CatalogError.reservationAlreadyCommitted(sku: mug, order: "o-1")) {
            try Stock.decide(.release(mug, order: "o-1"), given: [ten, reserved("o-1", 4), committed])
        }
        // A committed order cannot reserve again under the same reference.
        #expect(try Stock.decide(.reserve(mug, order: "o-1", quantity: 4), given: [ten, reserved("o-1", 4), committed]).isEmpty)
        let state = Stock.replay([ten, reserved("o-1", 4), committed])
        #expect(state.onHand == 6 && state.available == 6 && state.reserved == 0)
    }

    @Test func refusesBadQuantitiesAndOrderReferences() {
        #expect(throws: CatalogError.invalidQuantity(0)) { try Stock.decide(.reserve(mug, order: "o-1", quantity: 0), given: [ten]) }
        #expect(throws: CatalogError.invalidOrderReference("")) { try Stock.decide(.reserve(mug, order: "", quantity: 1), given: [ten]) }
        let long = String(repeating: "o", count: 65)
        #expect(throws: CatalogError.invalidOrderReference(long)) { try Stock.decide(.release(mug, order: long), given: [ten]) }
    }

    @Test func aStateSurvivesItsSnapshotEncoding() throws {
        var state = Stock.initialState
        state.onHand = 40
        state.reservations["o-1"] = 2
        state.committed["o-0"] = 3
        let decoded = try JSONDecoder().decode(Stock.State.self, from: try JSONEncoder().encode(state))
        #expect(decoded == state && decoded.available == 38)
    }

    @Test func theStockRemembersItsLatestCommittedOrdersOnly() throws {
        let limit = Stock.rememberedCommits
        var events: [Stock.Event] = [.received(.init(sku: mug, quantity: limit + 2))]
        for index in 0..<(limit + 2) {
            events.append(reserved("o-\(index)", 1))
            events.append(.committed(.init(sku: mug, order: "o-\(index)", quantity: 1)))
        }
        let state = Stock.replay(events)
        #expect(state.committed.count == limit && state.commitOrder.count == limit && state.onHand == 0)
        #expect(state.committed["o-0"] == nil && state.committed["o-1"] == nil && state.committed["o-2"] == 1)
        // The forgotten are decided as if never reserved; the remembered as before.
        #expect(throws: CatalogError.unknownReservation(sku: mug, order: "o-0")) { try Stock.decide(.commit(mug, order: "o-0"), state) }
        #expect(try Stock.decide(.release(mug, order: "o-1"), state).isEmpty)
        #expect(try Stock.decide(.commit(mug, order: "o-\(limit + 1)"), state).isEmpty)
        #expect(throws: CatalogError.reservationAlreadyCommitted(sku: mug, order: "o-2")) { try Stock.decide(.release(mug, order: "o-2"), state) }
    }
}
