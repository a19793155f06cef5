import Catalog
import SharedKernel
import Testing

@Suite("Product")
struct ProductTests {
    let mug = sku("MUG-001")
    var added: Product.Event { .added(.init(sku: mug, name: "Mug", description: "A mug.", price: eur(1250))) }

    @Test func isAddedWithTrimmedNameAndDescription() throws {
        let events = try Product.decide(.add(sku: mug, name: "  Mug ", description: " A mug. ", price: eur(1250)), given: [])
        #expect(events == [added])
    }

    @Test func cannotBeAddedTwice() {
        #expect(throws: CatalogError.productAlreadyExists(mug)) {
            try Product.decide(.add(sku: mug, name: "Mug", description: "", price: eur(1)), given: [added])
        }
    }

    @Test(arguments: ["", "   ", String(repeating: "x", count: 121), "bad\u{0}name"])
    func refusesAnInvalidName(name: String) {
        #expect(throws: CatalogError.self) {
            try Product.decide(.add(sku: mug, name: name, description: "", price: eur(1)), given: [])
        }
        #expect(throws: CatalogError.self) { try Product.decide(.rename(mug, to: name), given: [added]) }
    }

    @Test func refusesATooLongDescriptionAndAZeroPrice() {
        #expect(throws: CatalogError.invalidDescription("longer than 2000 characters")) {
            try Product.decide(.add(sku: mug, name: "Mug", description: String(repeating: "d", count: 2001), price: eur(1)), given: [])
        }
        #expect(throws: CatalogError.invalidPrice) {
            try Product.decide(.add(sku: mug, name: "Mug", description: "", price: eur(0)), given: [])
        }
    }

    @Test func isRenamedAndRepricedInItsOwnCurrency() throws {
        #expect(try Product.decide(.rename(mug, to: "Big mug"), given: [added]) == [.renamed(.init(sku: mug, name: "Big mug"))])
        #expect(try Product.decide(.rename(mug, to: "Mug"), given: [added]).isEmpty)
        #expect(try Product.decide(.changePrice(mug, to: eur(1500)), given: [added]) == [.priceChanged(.init(sku: mug, price: eur(1500)))])
        #expect(try Product.decide(.changePrice(mug, to: eur(1250)), given: [added]).isEmpty)
        let dollars = try Money(minorUnits: 1500, currency: .usd)
        #expect(throws: CatalogError.invalidMoney(.currencyMismatch(expected: .eur, actual: .usd))) {
            try Product.decide(.changePrice(mug, to: dollars), given: [added])
        }
        #expect(throws: CatalogError.invalidPrice) { try Product.decide(.changePrice(mug, to: eur(0)), given: [added]) }
    }

    @Test func isDiscontinuedOnceAndThenFrozen() throws {
        let discontinued = Product.Event.discontinued(.init(sku: mug))
        #expect(try Product.decide(.discontinue(mug), given: [added]) == [discontinued])
        #expect(try Product.decide(.discontinue(mug), given: [added, discontinued]).isEmpty)
        #expect(throws: CatalogError.productDiscontinued(mug)) { try Product.decide(.rename(mug, to: "X"), given: [added, discontinued]) }
        #expect(throws: CatalogError.productDiscontinued(mug)) { try Product.decide(.changePrice(mug, to: eur(9)), given: [added, discontinued]) }
        #expect(Product.replay([added, discontinued]).isDiscontinued)
    }

    @Test func mustExistBeforeAnythingElse() {
        for command in [Product.Command.rename(mug, to: "X"), .changePrice(mug, to: eur(1)), .discontinue(mug)] {
            #expect(throws: CatalogError.unknownProduct(mug)) { try Product.decide(command, given: []) }
        }
    }

    @Test(arguments: ["", "mug-001", "MUG 001", "MUG_001", String(repeating: "A", count: 33)])
    func refusesAnInvalidSKU(text: String) {
        #expect(throws: CatalogError.invalidSKU(text)) { try SKU(text) }
    }
}
