import Billing
import Contracts
import BillingService
import EventStore
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import PaymentProviderSimulator
import TestSupport
import Testing

/// Billing on a database of its own, calling a payment provider simulator over HTTP; the body gets Billing's client
/// and the simulator (to read its ledger).
func withBilling(
    deadline: Duration = .seconds(5), database: DatabaseURL? = nil, providerFile: URL? = nil,
    _ body: @escaping @Sendable (any TestClientProtocol, PaymentProviderSimulator) async throws -> Void
) async throws {
    let url: DatabaseURL
    if let database { url = database } else { url = try await TestDatabase.create() }
    let simulator = try PaymentProviderSimulator(file: providerFile ?? scratchViews().appendingPathComponent("provider.sqlite"), slowDelay: .seconds(30))
    let provider = ProviderServer.application(.init(port: 0).forTests, simulator: simulator, logger: TestDatabase.logger)
    try await provider.test(.live) { providerClient in
        let app = try await BillingService.application(
            .init(port: 0, database: url, providerURL: "http://127.0.0.1:\(try #require(providerClient.port))", providerDeadline: deadline,
                  viewsDirectory: scratchViews(), serviceSecret: TestSecrets.service).forTests,
            logger: TestDatabase.logger)
        try await app.test(.live) { service in try await body(try await service.calling("billing"), simulator) }
    }
}

func authorise(_ card: String, cents: Int = 4499, currency: String = "EUR") -> String {
    #"{"amount":{"amount":\#(cents),"currency":"\#(currency)"},"card":"\#(card)"}"#
}

@Suite("Billing service")
struct BillingServiceTests {
    @Test func authorisesOnceAndCapturesNeverMoreThanAuthorised() async throws {
        try await withBilling { client, provider in
            let first = try await client.send(.post, "/payments/o-1/authorise", authorise(PaymentProviderSimulator.approve), key: "auth-o-1")
            #expect(first.status == .created && first.object["status"] as? String == "authorised")
            let retry = try await client.send(.post, "/payments/o-1/authorise", authorise(PaymentProviderSimulator.approve), key: "auth-o-1")
            #expect(retry.status == .created && retry.body == first.body)
            let again = try await client.send(.post, "/payments/o-1/authorise", authorise(PaymentProviderSimulator.approve))
            #expect(again.status == .unprocessableContent && again.rule == "already-authorised")

            let tooMuch = try await client.send(.post, "/payments/o-1/capture", #"{"amount":{"amount":4500,"currency":"EUR"}}"#)
            #expect(tooMuch.status == .unprocessableContent && tooMuch.rule == "exceeds-authorised")
            let capture = try await client.send(.post, "/payments/o-1/capture", #"{"amount":{"amount":4499,"currency":"EUR"}}"#, key: "cap-o-1")
            #expect(capture.status == .ok && capture.object["status"] as? String == "captured")
            let captureRetry = try await client.send(.post, "/payments/o-1/capture", #"{"amount":{"amount":4499,"currency":"EUR"}}"#, key: "cap-o-1")
            #expect(captureRetry.body == capture.body)
            let void = try await client.send(.post, "/payments/o-1/void")
            #expect(void.status == .unprocessableContent && void.rule == "already-captured")
            let refundTooMuch = try await client.send(.post, "/payments/o-1/refund", #"{"amount":{"amount":5000,"currency":"EUR"}}"#)
            #expect(refundTooMuch.status == .unprocessableContent && refundTooMuch.rule == "exceeds-captured")
            let refund = try await client.send(.post, "/payments/o-1/refund", #"{"amount":{"amount":4499,"currency":"EUR"}}"#)
            #expect(refund.status == .ok && refund.object["status"] as? String == "refunded")

            let ledger = try await provider.ledger()
            #expect(ledger.authorisations == ["o-1": 1])
            #expect(ledger.captures == ["o-1": 1] && ledger.refunds == ["o-1": 1])
        }
    }

    /// Two identical requests at once (a saga step's retry overlapping its first attempt) get one reply, the first's,
    /// and the provider acts once: never a refusal that only the other request's write caused.
    @Test(.timeLimit(.minutes(2)))
    func identicalRequestsAtOnceGetOneReplyAndActOnce() async throws {
        try await withBilling { client, provider in
            let port = try #require(client.port)
            for pair in 0..<20 {
                let order = "pair-\(pair)"
                let authorised = try await sendAtOnce(port: port, audience: "billing", .POST, "/payments/\(order)/authorise",
                                                      authorise(PaymentProviderSimulator.approve), key: "auth-\(order)")
                #expect(authorised.map(\.status) == [201, 201], "\(order): \(authorised)")
                #expect(authorised[0].body == authorised[1].body, "\(order)")
                let captured = try await sendAtOnce(port: port, audience: "billing", .POST, "/payments/\(order)/capture",
                                                    #"{"amount":{"amount":4499,"currency":"EUR"}}"#, key: "capture-\(order)")
                #expect(captured.map(\.status) == [200, 200], "\(order): \(captured)")
                #expect(captured[0].body == captured[1].body, "\(order)")
                let refunded = try await sendAtOnce(port: port, audience: "billing", .POST, "/payments/\(order)/refund",
                                                    #"{"amount":{"amount":4499,"currency":"EUR"}}"#, key: "refund-\(order)")
                #expect(refunded.map(\.status) == [200, 200], "\(order): \(refunded)")
                #expect(refunded[0].body == refunded[1].body, "\(order)")
            }
            let ledger = try await provider.ledger()
            #expect(ledger.authorisations.count == 20 && ledger.authorisations.values.allSatisfy { $0 == 1 })
            #expect(ledger.captures.count == 20 && ledger.captures.values.allSatisfy { $0 == 1 })
            #expect(ledger.refunds.count == 20 && ledger.refunds.values.allSatisfy { $0 == 1 })
        }
    }

    /// Billing and the provider restarted between authorise and capture, and between capture and refund: every
    /// payment goes on where it stood, each order is charged once and refunded once, and nothing reaches another
    /// order's payment. (The simulator used to live in Billing's memory: a restart forgot every authorisation, handed
    /// out the same ids again, and a refund of one order went to another.)
    @Test(.timeLimit(.minutes(2)))
    func restartsOfBillingAndTheProviderStrandDoubleOrMisdirectNothing() async throws {
        let database = try await TestDatabase.create()
        let file = scratchViews().appendingPathComponent("provider.sqlite")
        let amount = #"{"amount":{"amount":4499,"currency":"EUR"}}"#
        try await withBilling(database: database, providerFile: file) { client, _ in
            let authorised = try await client.send(.post, "/payments/o-a/authorise", authorise(PaymentProviderSimulator.approve), key: "auth-a")
            #expect(authorised.status == .created, "\(String(buffer: authorised.body))")
        }
        try await withBilling(database: database, providerFile: file) { client, _ in
            let other = try await client.send(.post, "/payments/o-b/authorise", authorise(PaymentProviderSimulator.approve), key: "auth-b")
            #expect(other.status == .created, "\(String(buffer: other.body))")
            let captured = try await client.send(.post, "/payments/o-a/capture", amount, key: "capture-a")
            #expect(captured.status == .ok && captured.object["status"] as? String == "captured", "\(String(buffer: captured.body))")
            // A retry of the first authorisation, after both restarted, is answered as it was.
            let again = try await client.send(.post, "/payments/o-a/authorise", authorise(PaymentProviderSimulator.approve), key: "auth-a")
            #expect(again.status == .created && again.headers[HTTPField.Name("Idempotent-Replayed")!] == "true")
        }
        try await withBilling(database: database, providerFile: file) { client, provider in
            let refunded = try await client.send(.post, "/payments/o-a/refund", amount, key: "refund-a")
            #expect(refunded.status == .ok && refunded.object["status"] as? String == "refunded", "\(String(buffer: refunded.body))")
            let voided = try await client.send(.post, "/payments/o-b/void", key: "void-b")
            #expect(voided.status == .ok && voided.object["status"] as? String == "voided", "\(String(buffer: voided.body))")
            let ledger = try await provider.ledger()
            #expect(ledger.authorisations == ["o-a": 1, "o-b": 1])
            #expect(ledger.captures == ["o-a": 1] && ledger.refunds == ["o-a": 1] && ledger.voids == ["o-b": 1])
        }
    }

    @Test func aDeclineIsRecordedWithItsReason() async throws {
        try await withBilling { client, provider in
            let declined = try await client.send(.post, "/payments/o-2/authorise", authorise(PaymentProviderSimulator.insufficientFunds))
            #expect(declined.status == .created && declined.object["status"] as? String == "declined")
            #expect(declined.object["declines"] as? [String] == ["insufficient funds"])
            // Another card may still be authorised after a decline.
            let approved = try await client.send(.post, "/payments/o-2/authorise", authorise(PaymentProviderSimulator.approve))
            #expect(approved.object["status"] as? String == "authorised")
            let void = try await client.send(.post, "/payments/o-2/void")
            #expect(void.status == .ok && void.object["status"] as? String == "voided")
            #expect(try await provider.ledger().voids == ["o-2": 1])
        }
    }

    @Test func aFailingOrSlowProviderRecordsNothing() async throws {
        try await withBilling(deadline: .seconds(2)) { client, _ in
            let failing = try await client.send(.post, "/payments/o-3/authorise", authorise(PaymentProviderSimulator.providerError))
            #expect(failing.status == .serviceUnavailable && failing.rule == "provider-unavailable")
            #expect(failing.headers[.retryAfter] != nil)
            let slow = try await client.send(.post, "/payments/o-3/authorise", authorise(PaymentProviderSimulator.slow))
            #expect(slow.status == .gatewayTimeout && slow.rule == "provider-timeout")
            let payment = try await client.execute(uri: "/payments/o-3", method: .get)
            #expect(payment.status == .notFound)
        }
    }

    @Test func badPaymentRequestsAreRefused() async throws {
        try await withBilling { client, provider in
            let cases: [(String, String, HTTPResponse.Status, String)] = [
                ("/payments/o-4/authorise", authorise(PaymentProviderSimulator.approve, currency: "XYZ"), .unprocessableContent, "invalid-money"),
                ("/payments/o-4/authorise", authorise(PaymentProviderSimulator.approve, cents: -1), .unprocessableContent, "invalid-money"),
                ("/payments/o-4/authorise", authorise(PaymentProviderSimulator.approve, cents: 0), .unprocessableContent, "invalid-amount"),
                ("/payments/o-4/authorise", #"{"amount":12,"card":"4242424242424242"}"#, .badRequest, "malformed-json"),
                ("/payments/o-4/capture", #"{"amount":{"amount":100,"currency":"EUR"}}"#, .unprocessableContent, "not-authorised"),
            ]
            for (uri, body, status, rule) in cases {
                let response = try await client.send(.post, uri, body)
                #expect(response.status == status && response.rule == rule, "\(body): \(String(buffer: response.body))")
            }
            #expect(try await provider.ledger().authorisations.isEmpty)
        }
    }

    @Test func paymentsArePublishedOnTheFeed() async throws {
        try await withBilling { client, _ in
            try await client.send(.post, "/payments/o-5/authorise", authorise(PaymentProviderSimulator.decline))
            try await client.send(.post, "/payments/o-5/authorise", authorise(PaymentProviderSimulator.approve))
            try await client.send(.post, "/payments/o-5/capture", #"{"amount":{"amount":4499,"currency":"EUR"}}"#)
            let first = try await client.execute(uri: "/feed/payments?limit=2", method: .get)
            let page = try JSONDecoder().decode(BillingFeed.Page.self, from: Data(buffer: first.body))
            #expect(page.events.map(\.event.type) == ["billing.v1.payment-declined", "billing.v1.payment-authorised"])
            #expect(page.events.first?.event.reason == "card declined")
            let second = try await client.execute(uri: "/feed/payments?after=\(page.next)", method: .get)
            let rest = try JSONDecoder().decode(BillingFeed.Page.self, from: Data(buffer: second.body))
            #expect(rest.events.map(\.event.type) == ["billing.v1.payment-captured"])
            let empty = try JSONDecoder().decode(BillingFeed.Page.self, from: Data(buffer: try await client.execute(uri: "/feed/payments?after=\(rest.next)", method: .get).body))
            #expect(empty.events.isEmpty && empty.next == rest.next)
            let malformed = try await client.execute(uri: "/feed/payments?after=yesterday", method: .get)
            #expect(malformed.status == .badRequest && malformed.rule == "malformed-position")
        }
    }
}
