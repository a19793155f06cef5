import BillingService
import CatalogService
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Ordering
import OrderingService
import Synchronization
import ShopSupport
import TestSupport
import Testing

@Suite("Order fulfilment saga")
struct SagaTests {
    @Test func theHappyPathConfirmsCommitsTheStockAndCapturesOnce() async throws {
        try await withShop { shop in
            try await shop.product("MUG-001", price: 1250, stock: 5)
            let order = try await shop.order("kim", "MUG-001", quantity: 2)
            let outcome = try await shop.outcome(order)
            #expect(outcome["status"] as? String == "confirmed")
            let saga = try await shop.saga(order)
            #expect(saga["status"] as? String == "completed")
            let steps = (saga["timeline"] as? [[String: Any]])?.map { "\($0["step"]!) \($0["outcome"]!)" }
            #expect(steps == ["reserve-stock succeeded", "authorise-payment succeeded", "commit-stock succeeded", "capture-payment succeeded"])
            // A step that leads on to the next is recorded with the next one's result, and keeps its own times.
            let times = ((saga["timeline"] as? [[String: Any]]) ?? []).map { ($0["startedAt"] as? String ?? "", $0["finishedAt"] as? String ?? "") }
            #expect(times.count == 4 && zip(times, times.dropFirst()).allSatisfy { $0.1 <= $1.0 }, "\(times)")
            #expect(saga["card"] as? String == "•••• 4242")
            #expect(try await shop.stock("MUG-001") == (3, 0))
            let payment = try await shop.billing.object("/payments/\(order)")
            #expect(payment["status"] as? String == "captured" && (payment["captured"] as? [String: Any])?["amount"] as? Int == 2500)
            let ledger = try await shop.ledger()
            #expect(ledger["authorisations"]?[order] == 1 && ledger["captures"]?[order] == 1)
            // The order-detail view shows the saga's steps as the order's timeline.
            let detail = try await shop.ordering.object("/orders/\(order)/detail?minPosition=\(try await position(shop, order))")
            let timeline = ((detail["order"] as? [String: Any])?["timeline"] as? [[String: Any]])?.compactMap { $0["status"] as? String }
            #expect(timeline == ["placed", "awaiting-stock", "awaiting-payment", "confirmed"])
        }
    }

    @Test func noStockRejectsTheOrderWithTheReasonAndTakesNoPayment() async throws {
        try await withShop { shop in
            try await shop.product("MUG-001", stock: 1)
            let order = try await shop.order("kim", "MUG-001", quantity: 2)
            let outcome = try await shop.outcome(order)
            #expect(outcome["status"] as? String == "rejected")
            #expect((outcome["reason"] as? String)?.contains("MUG-001") == true, "\(outcome)")
            #expect(try await shop.saga(order)["status"] as? String == "rejected")
            #expect(try await shop.stock("MUG-001") == (1, 0))
            #expect(try await shop.billing.execute(uri: "/payments/\(order)", method: .get).status == .notFound)
        }
    }

    @Test(arguments: [("4000000000000002", "card declined"), ("4000000000009995", "insufficient funds")])
    func aDeclinedPaymentReleasesTheStockAndRejects(card: String, reason: String) async throws {
        try await withShop { shop in
            try await shop.product("MUG-001", stock: 3)
            let order = try await shop.order("kim", "MUG-001", quantity: 2, card: card)
            let outcome = try await shop.outcome(order)
            #expect(outcome["status"] as? String == "rejected" && outcome["reason"] as? String == "payment declined: \(reason)")
            let saga = try await shop.saga(order)
            #expect(saga["status"] as? String == "rejected")
            #expect((saga["done"] as? [String]) == ["reserve-stock", "release-stock"])
            #expect(try await shop.stock("MUG-001") == (3, 0))
            #expect(try await shop.ledger()["authorisations"]?[order] == nil)
        }
    }

    @Test func aPaymentStepThatTimesOutIsRetriedThenCompensated() async throws {
        // The slow card makes the provider answer after Billing's deadline: Billing says 504 every time.
        try await withShop(providerDeadline: .milliseconds(100)) { shop in
            try await shop.product("MUG-001", stock: 3)
            let order = try await shop.order("kim", "MUG-001", card: "4000000000000101")
            let outcome = try await shop.outcome(order)
            #expect(outcome["status"] as? String == "rejected")
            #expect((outcome["reason"] as? String)?.hasPrefix("payment could not be authorised") == true, "\(outcome)")
            let saga = try await shop.saga(order)
            let timeline = (saga["timeline"] as? [[String: Any]])?.map { "\($0["step"]!) \($0["attempt"]!) \($0["outcome"]!)" }
            #expect(timeline == ["reserve-stock 1 succeeded", "authorise-payment 1 failed", "authorise-payment 2 failed",
                                 "authorise-payment 3 failed", "release-stock 1 succeeded", "cancel-payment 1 succeeded"])
            #expect(saga["status"] as? String == "rejected")
            #expect(try await shop.stock("MUG-001") == (3, 0))
        }
    }

    @Test func aStepThatKeepsFailingAfterConfirmationParksAndARetryReDrivesIt() async throws {
        try await withShop { shop in
            try await shop.product("MUG-001", stock: 3)
            try await shop.outage(["capture"])
            let order = try await shop.order("kim", "MUG-001")
            #expect(try await shop.outcome(order)["status"] as? String == "confirmed")
            let parked = try await shop.saga(order)
            #expect(parked["status"] as? String == "parked" && parked["step"] as? String == "capture-payment")
            #expect((parked["reason"] as? String)?.contains("503") == true, "\(parked)")
            let listed = try await shop.ordering.object("/admin/sagas?status=parked")["sagas"] as? [[String: Any]]
            #expect(listed?.map { $0["id"] as? String } == [order])

            // Still down: a retry parks it again. Back up: a retry completes it, capturing once.
            #expect(try await shop.ordering.send(.post, "/admin/sagas/\(order)/retry").status == .ok)
            let again = try await shop.saga(order) { $0 == "parked" }
            #expect((again["timeline"] as? [[String: Any]])?.filter { $0["step"] as? String == "capture-payment" }.count == 6)
            try await shop.outage([])
            #expect(try await shop.ordering.send(.post, "/admin/sagas/\(order)/retry").status == .ok)
            #expect(try await shop.saga(order)["status"] as? String == "completed")
            #expect(try await shop.ledger()["captures"]?[order] == 1)
            let notParked = try await shop.ordering.send(.post, "/admin/sagas/\(order)/retry")
            #expect(notParked.status == .unprocessableContent && notParked.rule == "saga-not-parked")
        }
    }

    @Test func cancellingBeforeConfirmationReleasesTheStock() async throws {
        // Authorisations fail for now, slowly retried: the customer cancels while the saga waits to retry.
        let saga = FulfilmentOrchestrator.Configuration(retry: .init(attempts: 10, firstDelay: .seconds(1)), pollInterval: .milliseconds(50))
        try await withShop(saga: saga) { shop in
            try await shop.product("MUG-001", stock: 3)
            try await shop.outage(["authorise"])
            let order = try await shop.order("kim", "MUG-001", quantity: 2)
            _ = try await shop.saga(order) { _ in true }
            try await within(.seconds(20), "a failed authorisation") {
                while try await shop.ordering.object("/admin/sagas/\(order)")["attempts"] as? Int != 1 { try await Task.sleep(for: .milliseconds(20)) }
            }
            let cancel = try await shop.ordering.send(.post, "/orders/\(order)/cancel", #"{"reason":"changed my mind"}"#)
            #expect(cancel.status == .ok, "\(String(buffer: cancel.body))")
            let done = try await shop.saga(order)
            #expect(done["status"] as? String == "cancelled" && done["reason"] as? String == "changed my mind")
            let cancelled = try await shop.ordering.object("/orders/\(order)")
            #expect(cancelled["status"] as? String == "cancelled" && cancelled["refundRequired"] as? Bool == false)
            #expect(try await shop.stock("MUG-001") == (3, 0))
        }
    }

    @Test func cancellingAfterConfirmationReturnsTheStockAndRefunds() async throws {
        try await withShop { shop in
            try await shop.product("MUG-001", stock: 3)
            let order = try await shop.order("kim", "MUG-001", quantity: 2)
            #expect(try await shop.saga(order)["status"] as? String == "completed")
            #expect(try await shop.stock("MUG-001") == (1, 0))
            let cancel = try await shop.ordering.send(.post, "/orders/\(order)/cancel", #"{"reason":"arrived broken"}"#)
            #expect(cancel.status == .ok)
            let done = try await shop.saga(order) { $0 == "cancelled" || $0 == "parked" }
            #expect(done["status"] as? String == "cancelled", "\(done)")
            #expect(try await shop.ordering.object("/orders/\(order)")["refundRequired"] as? Bool == true)
            #expect(try await shop.stock("MUG-001") == (3, 0))
            let payment = try await shop.billing.object("/payments/\(order)")
            #expect(payment["status"] as? String == "refunded" && (payment["refunded"] as? [String: Any])?["amount"] as? Int == 2500)
            let ledger = try await shop.ledger()
            #expect(ledger["captures"]?[order] == 1 && ledger["refunds"]?[order] == 1)
        }
    }

    @Test func fiftyCustomersRacingForTenUnitsGetExactlyTenOrders() async throws {
        try await withShop(saga: .init(pollInterval: .milliseconds(50))) { shop in
            try await shop.product("LAST-10", price: 999, stock: 10)
            let orders = try await withThrowingTaskGroup(of: String.self) { group in
                for customer in 0..<50 { group.addTask { try await shop.order("racer-\(customer)", "LAST-10") } }
                return try await group.reduce(into: [String]()) { $0.append($1) }
            }
            var confirmed: [String] = [], rejected: [String] = []
            for order in orders {
                let outcome = try await shop.outcome(order)
                switch outcome["status"] as? String {
                case "confirmed": confirmed.append(order)
                case "rejected":
                    rejected.append(order)
                    #expect((outcome["reason"] as? String)?.contains("LAST-10") == true, "\(outcome)")
                default: Issue.record("order \(order) ended \(outcome)")
                }
            }
            #expect(confirmed.count == 10 && rejected.count == 40)
            for order in orders { _ = try await shop.saga(order) }
            #expect(try await shop.stock("LAST-10") == (0, 0))
            var captured = 0
            for order in confirmed {
                captured += (try await shop.billing.object("/payments/\(order)")["captured"] as? [String: Any])?["amount"] as? Int ?? 0
            }
            #expect(captured == 10 * 999)
            let ledger = try await shop.ledger()
            #expect(ledger["authorisations"]?.count == 10 && ledger["captures"]?.values.reduce(0, +) == 10)
        }
    }
}

/// Which orchestrator is working which instance, and whether two ever worked one at the same time.
final class WorkLog: Sendable {
    private struct State { var working: [String: String] = [:], overlaps: [String] = [], steps: [String: Int] = [:] }
    private let state = Mutex(State())

    func observer(_ name: String) -> @Sendable (String, Fulfilment.Step, Bool) -> Void {
        { saga, step, starting in
            self.state.withLock { state in
                if starting {
                    if let other = state.working[saga] { state.overlaps.append("\(saga) \(step): \(name) while \(other)") }
                    state.working[saga] = name
                    state.steps[name, default: 0] += 1
                } else {
                    state.working[saga] = nil
                }
            }
        }
    }

    var overlaps: [String] { state.withLock { $0.overlaps } }
    var steps: [String: Int] { state.withLock { $0.steps } }
}

extension SagaTests {
    @Test func twoOrchestratorsOnOneDatabaseNeverWorkOneInstanceAtOnce() async throws {
        let log = WorkLog()
        // Two instances at a time each: neither can take all the work, so both must share it.
        let first = FulfilmentOrchestrator.Configuration(pollInterval: .milliseconds(5), concurrency: 2, observer: log.observer("first"))
        let second = FulfilmentOrchestrator.Configuration(pollInterval: .milliseconds(5), concurrency: 2, observer: log.observer("second"))
        try await withShop(saga: first, secondOrdering: second) { shop in
            try await shop.product("MUG-001", stock: 100)
            let second = try #require(shop.secondOrdering)
            // Checkouts through both instances; each wakes its own orchestrator, and both poll every 5 ms.
            let orders = try await withThrowingTaskGroup(of: String.self) { group in
                for customer in 0..<30 {
                    let through = customer.isMultiple(of: 2) ? shop : Shop(catalog: shop.catalog, ordering: second, billing: shop.billing, provider: shop.provider)
                    group.addTask { try await through.order("buyer-\(customer)", "MUG-001") }
                }
                return try await group.reduce(into: [String]()) { $0.append($1) }
            }
            for order in orders { #expect(try await shop.saga(order)["status"] as? String == "completed") }
            #expect(log.overlaps.isEmpty, "\(log.overlaps)")
            #expect(log.steps["first", default: 0] > 0 && log.steps["second", default: 0] > 0, "\(log.steps)")
            #expect(log.steps.values.reduce(0, +) == 30 * 4)  // each step of each instance performed once
            let ledger = try await shop.ledger()
            #expect(orders.allSatisfy { ledger["authorisations"]?[$0] == 1 && ledger["captures"]?[$0] == 1 })
        }
    }
}

/// The position a read of `order` must reach to see its confirmation.
func position(_ shop: Shop, _ order: String) async throws -> String {
    let feed = try await shop.ordering.object("/feed/orders?limit=1000")
    let entries = (feed["events"] as? [[String: Any]]) ?? []
    return entries.last { ($0["event"] as? [String: Any])?["order"] as? String == order }?["position"] as? String ?? "0-0"
}

extension SagaTests {
    /// A customer's checkout, taken by one Ordering instance, is in their order list and order page read from the other
    /// at once, when the read asks for the store's head (`minPosition=head`, as the BFF does for a customer's own
    /// orders): each instance has views of its own, and the other's may not have applied the order yet.
    @Test func anotherInstanceReadsTheCustomersOwnWritesWhenAskedForTheHead() async throws {
        try await withShop(secondOrdering: .init()) { shop in
            try await shop.product("MUG-001", stock: 10)
            let second = try #require(shop.secondOrdering)
            for round in 0..<5 {
                let order = try await shop.order("reader-\(round)", "MUG-001")
                let list = try await second.object("/customers/reader-\(round)/orders?minPosition=head")
                #expect((list["view"] as? [String: Any])?["stale"] as? Bool == false)
                #expect(((list["orders"] as? [[String: Any]]) ?? []).contains { $0["order"] as? String == order }, "round \(round)")
                let detail = try await second.send(.get, "/orders/\(order)/detail?minPosition=head")
                #expect(detail.status == .ok, "round \(round): \(String(buffer: detail.body))")
            }
            let malformed = try await second.send(.get, "/customers/reader-0/orders?minPosition=tail")
            #expect(malformed.status == .badRequest && malformed.rule == "malformed-position")
        }
    }
}
