import Billing
import SharedKernel
import Testing

func eur(_ cents: Int64) -> Money { try! Money(minorUnits: cents, currency: .eur) }

@Suite("Payment")
struct PaymentTests {
    let order = "order-1"
    var authorised: Payment.Event { .authorised(.init(order: order, authorisation: "auth-1", amount: eur(4499))) }
    func captured(_ cents: Int64) -> Payment.Event { .captured(.init(order: order, amount: eur(cents))) }

    @Test func recordsAnAuthorisationOnceAndADeclineWithItsReason() throws {
        #expect(try Payment.decide(.recordAuthorisation(order: order, authorisation: "auth-1", amount: eur(4499)), given: []) == [authorised])
        #expect(try Payment.decide(.recordAuthorisation(order: order, authorisation: "auth-1", amount: eur(4499)), given: [authorised]).isEmpty)
        #expect(throws: BillingError.alreadyAuthorised(order: order)) {
            try Payment.decide(.recordAuthorisation(order: order, authorisation: "auth-2", amount: eur(4499)), given: [authorised])
        }
        let declined = Payment.Event.declined(.init(order: order, amount: eur(4499), reason: "insufficient funds"))
        #expect(try Payment.decide(.recordDecline(order: order, amount: eur(4499), reason: "insufficient funds"), given: []) == [declined])
        // Another card after a decline may be authorised.
        #expect(try Payment.decide(.recordAuthorisation(order: order, authorisation: "auth-1", amount: eur(4499)), given: [declined]) == [authorised])
        #expect(throws: BillingError.alreadyAuthorised(order: order)) {
            try Payment.decide(.recordDecline(order: order, amount: eur(4499), reason: "x"), given: [authorised])
        }
        #expect(throws: BillingError.invalidAmount) {
            try Payment.decide(.recordAuthorisation(order: order, authorisation: "auth-1", amount: eur(0)), given: [])
        }
    }

    @Test func capturesNeverMoreThanAuthorised() throws {
        #expect(try Payment.decide(.capture(order: order, amount: eur(4499)), given: [authorised]) == [captured(4499)])
        #expect(try Payment.decide(.capture(order: order, amount: eur(1000)), given: [authorised, captured(3000)]) == [captured(1000)])
        #expect(throws: BillingError.exceedsAuthorised(requested: eur(1500), remaining: eur(1499))) {
            try Payment.decide(.capture(order: order, amount: eur(1500)), given: [authorised, captured(3000)])
        }
        #expect(throws: BillingError.notAuthorised(order: order)) { try Payment.decide(.capture(order: order, amount: eur(1)), given: []) }
        let dollars = try Money(minorUnits: 100, currency: .usd)
        #expect(throws: BillingError.invalidMoney(.currencyMismatch(expected: .eur, actual: .usd))) {
            try Payment.decide(.capture(order: order, amount: dollars), given: [authorised])
        }
    }

    @Test func voidsAnUncapturedAuthorisationOnce() throws {
        let voided = Payment.Event.voided(.init(order: order))
        #expect(try Payment.decide(.void(order: order), given: [authorised]) == [voided])
        #expect(try Payment.decide(.void(order: order), given: [authorised, voided]).isEmpty)
        #expect(throws: BillingError.alreadyCaptured(order: order)) { try Payment.decide(.void(order: order), given: [authorised, captured(10)]) }
        #expect(throws: BillingError.alreadyVoided(order: order)) { try Payment.decide(.capture(order: order, amount: eur(1)), given: [authorised, voided]) }
        #expect(throws: BillingError.notAuthorised(order: order)) { try Payment.decide(.void(order: order), given: []) }
    }

    @Test func refundsNeverMoreThanCaptured() throws {
        let history = [authorised, captured(4499)]
        #expect(try Payment.decide(.refund(order: order, amount: eur(4499)), given: history) == [.refunded(.init(order: order, amount: eur(4499)))])
        let partly = history + [.refunded(.init(order: order, amount: eur(4000)))]
        #expect(throws: BillingError.exceedsCaptured(requested: eur(500), remaining: eur(499))) {
            try Payment.decide(.refund(order: order, amount: eur(500)), given: partly)
        }
        #expect(throws: BillingError.exceedsCaptured(requested: eur(1), remaining: eur(0))) {
            try Payment.decide(.refund(order: order, amount: eur(1)), given: [authorised])
        }
        #expect(Payment.replay(partly).refunded == eur(4000))
    }
}
