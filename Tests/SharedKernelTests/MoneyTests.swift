import Foundation
import SharedKernel
import Testing

@Suite("Money")
struct MoneyTests {
    let eur = Currency.eur

    @Test func isIntegerMinorUnitsInOneCurrency() throws {
        let price = try Money(minorUnits: 1250, currency: eur)
        #expect(price.description == "12.50 EUR")
        #expect(try price.multiplied(by: 3) == Money(minorUnits: 3750, currency: eur))
        #expect(try price.adding(Money(minorUnits: 5, currency: eur)).description == "12.55 EUR")
        #expect(try price.subtracting(price).isZero)
    }

    @Test func refusesNegativeAbsurdAndMixedAmounts() throws {
        #expect(throws: MoneyError.negative(-1)) { try Money(minorUnits: -1, currency: eur) }
        #expect(throws: MoneyError.tooLarge(Money.maximumMinorUnits + 1)) { try Money(minorUnits: Money.maximumMinorUnits + 1, currency: eur) }
        let price = try Money(minorUnits: 100, currency: eur)
        #expect(throws: MoneyError.currencyMismatch(expected: eur, actual: .usd)) { try price.adding(Money(minorUnits: 1, currency: .usd)) }
        #expect(throws: MoneyError.negative(-1)) { try price.subtracting(Money(minorUnits: 101, currency: eur)) }
        #expect(throws: MoneyError.self) { try price.multiplied(by: Int.max) }
        let code = "XYZ"
        #expect(throws: MoneyError.unsupportedCurrency("XYZ")) { try Currency(code) }
    }

    @Test func codesAsMinorUnitsAndValidatesWhenDecoding() throws {
        let price = try Money(minorUnits: 1250, currency: eur)
        let json = String(decoding: try JSONEncoder().encode(price), as: UTF8.self)
        #expect(json.contains(#""amount":1250"#) && json.contains(#""currency":"EUR""#))
        #expect(try JSONDecoder().decode(Money.self, from: Data(json.utf8)) == price)
        for bad in [#"{"amount":-5,"currency":"EUR"}"#, #"{"amount":5,"currency":"EURO"}"#, #"{"amount":1.5,"currency":"EUR"}"#,
                    #"{"amount":99999999999999,"currency":"EUR"}"#, #"{"currency":"EUR"}"#] {
            #expect(throws: DecodingError.self, "\(bad)") { try JSONDecoder().decode(Money.self, from: Data(bad.utf8)) }
        }
    }

    @Test func trimsAndSpotsControlCharacters() {
        #expect("  Big mug \n".trimmingWhitespace == "Big mug")
        #expect("   ".trimmingWhitespace == "")
        #expect("a\u{7}b".containsControlCharacters && !"a b".containsControlCharacters)
    }
}
