import Ordering
import Testing

@Suite("Cart")
struct CartTests {
    let kim = "customer-kim"
    func added(_ sku: String, _ quantity: Int) -> Cart.Event { .itemAdded(.init(customer: kim, sku: sku, quantity: quantity)) }

    @Test func addingAgainAddsToTheLine() throws {
        #expect(try Cart.decide(.add(customer: kim, sku: "MUG-001", quantity: 2), given: []) == [added("MUG-001", 2)])
        let state = Cart.replay([added("MUG-001", 2), added("TEE-001", 1), added("MUG-001", 3)])
        #expect(state.items == [.init(sku: "MUG-001", quantity: 5), .init(sku: "TEE-001", quantity: 1)])
    }

    @Test(arguments: [0, -1, 100])
    func refusesQuantitiesOutsideOneToNinetyNine(quantity: Int) {
        #expect(throws: OrderingError.invalidQuantity(quantity)) { try Cart.decide(.add(customer: kim, sku: "MUG-001", quantity: quantity), given: []) }
        #expect(throws: OrderingError.invalidQuantity(quantity)) {
            try Cart.decide(.setQuantity(customer: kim, sku: "MUG-001", quantity: quantity), given: [added("MUG-001", 1)])
        }
    }

    @Test func aLineNeverExceedsNinetyNineAndACartFiftyLines() throws {
        #expect(throws: OrderingError.invalidQuantity(100)) {
            try Cart.decide(.add(customer: kim, sku: "MUG-001", quantity: 2), given: [added("MUG-001", 98)])
        }
        let fifty = (1...Cart.maximumLines).map { added("SKU-\($0)", 1) }
        #expect(throws: OrderingError.tooManyLines(51)) { try Cart.decide(.add(customer: kim, sku: "SKU-X", quantity: 1), given: fifty) }
        #expect(try Cart.decide(.add(customer: kim, sku: "SKU-1", quantity: 1), given: fifty).count == 1)
    }

    @Test func changesAndRemovesOnlyLinesItHas() throws {
        let cart = [added("MUG-001", 2)]
        #expect(try Cart.decide(.setQuantity(customer: kim, sku: "MUG-001", quantity: 5), given: cart)
                == [.quantityChanged(.init(customer: kim, sku: "MUG-001", quantity: 5))])
        #expect(try Cart.decide(.setQuantity(customer: kim, sku: "MUG-001", quantity: 2), given: cart).isEmpty)
        #expect(try Cart.decide(.remove(customer: kim, sku: "MUG-001"), given: cart) == [.itemRemoved(.init(customer: kim, sku: "MUG-001"))])
        #expect(throws: OrderingError.itemNotInCart("TEE-001")) { try Cart.decide(.remove(customer: kim, sku: "TEE-001"), given: cart) }
        #expect(throws: OrderingError.itemNotInCart("TEE-001")) { try Cart.decide(.setQuantity(customer: kim, sku: "TEE-001", quantity: 1), given: cart) }
    }

    @Test func clearsAndChecksOutIntoAnEmptyCart() throws {
        let cart = [added("MUG-001", 2)]
        #expect(try Cart.decide(.clear(customer: kim), given: cart) == [.cleared(.init(customer: kim))])
        #expect(try Cart.decide(.clear(customer: kim), given: []).isEmpty)
        let checkedOut = Cart.Event.checkedOut(.init(customer: kim, order: "order-1", items: [.init(sku: "MUG-001", quantity: 2)]))
        #expect(try Cart.decide(.checkOut(customer: kim, order: "order-1"), given: cart) == [checkedOut])
        #expect(Cart.replay(cart + [checkedOut]).items.isEmpty)
        #expect(throws: OrderingError.emptyCart) { try Cart.decide(.checkOut(customer: kim, order: "order-2"), given: cart + [checkedOut]) }
    }

    @Test func refusesBadReferences() {
        #expect(throws: OrderingError.invalidReference("")) { try Cart.decide(.add(customer: "", sku: "MUG-001", quantity: 1), given: []) }
        #expect(throws: OrderingError.invalidReference("")) { try Cart.decide(.add(customer: kim, sku: "", quantity: 1), given: []) }
    }
}
