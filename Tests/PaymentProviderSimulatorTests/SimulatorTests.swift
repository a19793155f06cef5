import Foundation
import PaymentProviderSimulator
import Testing

@Suite("Payment provider simulator")
struct SimulatorTests {
    func file() -> URL {
        FileManager.default.temporaryDirectory.appendingPathComponent("provider-\(UUID())/provider.sqlite")
    }

    func approved(_ answer: PaymentProviderSimulator.Answer) throws -> String {
        guard case .approved(let id) = answer else { throw Failure("expected an approval, got \(answer)") }
        return id
    }

    struct Failure: Error, CustomStringConvertible { let description: String; init(_ description: String) { self.description = description } }

    @Test func behavesByCardNumber() async throws {
        let provider = try PaymentProviderSimulator(file: file(), slowDelay: .milliseconds(1))
        _ = try approved(try await provider.authorise(order: "o-1", amount: 4499, currency: "EUR", card: "4242 4242 4242 4242", key: "a"))
        #expect(try await provider.authorise(order: "o-1", amount: 4499, currency: "EUR", card: PaymentProviderSimulator.decline, key: "b")
                == .declined(reason: "card declined"))
        #expect(try await provider.authorise(order: "o-1", amount: 4499, currency: "EUR", card: PaymentProviderSimulator.insufficientFunds, key: "c")
                == .declined(reason: "insufficient funds"))
        #expect(try await provider.authorise(order: "o-1", amount: 4499, currency: "EUR", card: "1234", key: "d") == .declined(reason: "unknown test card"))
        await #expect(throws: PaymentProviderSimulator.Failure.unavailable("simulated provider error")) {
            try await provider.authorise(order: "o-1", amount: 4499, currency: "EUR", card: PaymentProviderSimulator.providerError, key: "e")
        }
        _ = try approved(try await provider.authorise(order: "o-2", amount: 4499, currency: "EUR", card: PaymentProviderSimulator.slow, key: "f"))
    }

    @Test func aRepeatedKeyActsOnceAndAKeyReusedForAnotherRequestIsRefused() async throws {
        let provider = try PaymentProviderSimulator(file: file())
        let first = try await provider.authorise(order: "o-1", amount: 4499, currency: "EUR", card: PaymentProviderSimulator.approve, key: "k")
        #expect(try await provider.authorise(order: "o-1", amount: 4499, currency: "EUR", card: PaymentProviderSimulator.approve, key: "k") == first)
        await #expect(throws: PaymentProviderSimulator.Failure.keyReused) {
            try await provider.authorise(order: "o-1", amount: 1, currency: "EUR", card: PaymentProviderSimulator.approve, key: "k")
        }
        let id = try approved(first)
        try await provider.capture(authorisation: id, amount: 4499, key: "capture-1")
        try await provider.capture(authorisation: id, amount: 4499, key: "capture-1")
        await #expect(throws: PaymentProviderSimulator.Failure.keyReused) { try await provider.refund(authorisation: id, amount: 4499, key: "capture-1") }
        let ledger = try await provider.ledger()
        #expect(ledger.authorisations == ["o-1": 1] && ledger.captures == ["o-1": 1] && ledger.refunds.isEmpty)
        await #expect(throws: PaymentProviderSimulator.Failure.unknownAuthorisation("nope")) {
            try await provider.capture(authorisation: "nope", amount: 1, key: "capture-2")
        }
    }

    /// A provider that forgot what it did when it restarted handed out the same ids again: a refund of one customer's
    /// order went to another, and retried captures charged twice. Its file keeps everything.
    @Test func aRestartForgetsNothingAndNeverRepeatsAnId() async throws {
        let file = file()
        var ids: Set<String> = []
        let before = try PaymentProviderSimulator(file: file)
        let first = try approved(try await before.authorise(order: "o-a", amount: 100, currency: "EUR", card: PaymentProviderSimulator.approve, key: "a"))
        ids.insert(first)
        try await before.setOutage([.refund])

        let after = try PaymentProviderSimulator(file: file)
        #expect(try await after.outage() == [.refund])
        try await after.setOutage([])
        // The same key answers the same; a new authorisation gets a new id.
        #expect(try await after.authorise(order: "o-a", amount: 100, currency: "EUR", card: PaymentProviderSimulator.approve, key: "a") == .approved(id: first))
        for index in 0..<20 {
            ids.insert(try approved(try await after.authorise(order: "o-\(index)", amount: 100, currency: "EUR", card: PaymentProviderSimulator.approve,
                                                              key: "n\(index)")))
        }
        #expect(ids.count == 21)
        // What was authorised before the restart can be captured and refunded after it, and only that order is.
        try await after.capture(authorisation: first, amount: 100, key: "capture-a")
        try await after.refund(authorisation: first, amount: 100, key: "refund-a")
        let ledger = try await after.ledger()
        #expect(ledger.captures == ["o-a": 1] && ledger.refunds == ["o-a": 1] && ledger.authorisations["o-a"] == 1)
    }
}
