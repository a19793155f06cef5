import BillingService
import EventStore
import CatalogService
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Ordering
import OrderingService
import PaymentProviderSimulator
import TestSupport
import Testing

/// The three services, each on its own database and port, talking real HTTP.
public struct Shop: Sendable {
    public let catalog: any TestClientProtocol
    public let ordering: any TestClientProtocol
    public let billing: any TestClientProtocol
    /// The payment provider simulator Billing calls.
    public let provider: any TestClientProtocol

    public init(catalog: any TestClientProtocol, ordering: any TestClientProtocol, billing: any TestClientProtocol,
                provider: any TestClientProtocol) {
        self.catalog = catalog
        self.ordering = ordering
        self.billing = billing
        self.provider = provider
    }
    /// A second Ordering instance on the same database, when asked for.
    public var secondOrdering: (any TestClientProtocol)?
    /// Ordering's database.
    public var orderingDatabase: DatabaseURL?

    public static let approve = "4242424242424242"

    /// A product with stock, once Ordering's copy of the catalog knows it.
    public func product(_ sku: String, price: Int = 1250, stock: Int) async throws {
        let added = try await catalog.send(.post, "/products", #"{"sku":"\#(sku)","name":"\#(sku) name","price":{"amount":\#(price),"currency":"EUR"}}"#)
        #expect(added.status == .created)
        let received = try await catalog.send(.post, "/products/\(sku)/stock", #"{"quantity":\#(stock)}"#)
        #expect(received.status == .ok)
    }

    /// Puts `quantity` of `sku` in the customer's cart (waiting for Ordering's copy to know it) and checks out.
    public func order(_ customer: String, _ sku: String, quantity: Int = 1, card: String = approve) async throws -> String {
        try await within(.seconds(20), "Ordering's copy of \(sku)") {
            while true {
                let added = try await ordering.send(.post, "/carts/\(customer)/items", #"{"sku":"\#(sku)","quantity":\#(quantity)}"#)
                if added.status == .ok { return }
                #expect(added.rule == "unknown-product")
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        let checkout = try await ordering.send(.post, "/carts/\(customer)/checkout", #"{"card":"\#(card)"}"#)
        #expect(checkout.status == .created, "\(String(buffer: checkout.body))")
        return try #require(checkout.object["order"] as? String)
    }

    /// The order once its saga has an outcome (confirmed, rejected or cancelled).
    public func outcome(_ order: String) async throws -> [String: Any] {
        try await ordering.object("/orders/\(order)?wait=30")
    }

    /// The saga once it is finished or parked, with its timeline.
    public func saga(_ order: String, until done: @escaping @Sendable (String) -> Bool = { ["completed", "rejected", "cancelled", "parked"].contains($0) }) async throws -> [String: Any] {
        let ordering = self.ordering
        let found = try await within(.seconds(30), "saga \(order) to settle") {
            while true {
                let saga = try await ordering.object("/admin/sagas/\(order)")
                if let status = saga["status"] as? String, done(status) { return JSONBox(saga) }
                try await Task.sleep(for: .milliseconds(20))
            }
        }
        return found.value
    }

    public func stock(_ sku: String) async throws -> (onHand: Int, reserved: Int) {
        let stock = try await catalog.object("/products/\(sku)")["stock"] as? [String: Any]
        return (stock?["onHand"] as? Int ?? -1, stock?["reserved"] as? Int ?? -1)
    }

    public func ledger() async throws -> [String: [String: Int]] {
        (try await provider.object("/simulator/ledger") as? [String: [String: Int]]) ?? [:]
    }

    public func outage(_ calls: [String]) async throws {
        let list = calls.map { "\"\($0)\"" }.joined(separator: ",")
        #expect(try await provider.send(.put, "/simulator/outage", #"{"calls":[\#(list)]}"#).status == .ok)
    }
}

/// A JSON object carried across tasks.
public struct JSONBox: @unchecked Sendable { public let value: [String: Any]; public init(_ value: [String: Any]) { self.value = value } }

extension FulfilmentOrchestrator.Configuration {
    /// Quick retries, so that failure paths finish in a test's time.
    public static let quick = Self(retry: .init(attempts: 3, firstDelay: .milliseconds(20), maximumDelay: .milliseconds(100)),
                            pollInterval: .milliseconds(50))
}

public func withShop(
    saga: FulfilmentOrchestrator.Configuration = .quick, providerDeadline: Duration = .seconds(5),
    secondOrdering: FulfilmentOrchestrator.Configuration? = nil,
    _ body: @escaping @Sendable (Shop) async throws -> Void
) async throws {
    let catalogDatabase = try await TestDatabase.create()
    let orderingDatabase = try await TestDatabase.create(folders: ["eventstore", "ordering"])
    let billingDatabase = try await TestDatabase.create()
    let logger = TestDatabase.logger
    let catalog = try await CatalogService.application(
        .init(port: 0, database: catalogDatabase, viewsDirectory: scratchViews(), serviceSecret: TestSecrets.service).forTests, logger: logger)
    let provider = ProviderServer.application(
        .init(port: 0).forTests, simulator: try PaymentProviderSimulator(file: scratchViews().appendingPathComponent("provider.sqlite"), slowDelay: .seconds(8)),
        logger: logger)
    try await catalog.test(.live) { catalogService in
      try await provider.test(.live) { providerClient in
        let billing = try await BillingService.application(
            .init(port: 0, database: billingDatabase, providerURL: "http://127.0.0.1:\(try #require(providerClient.port))",
                  providerDeadline: providerDeadline, viewsDirectory: scratchViews(), serviceSecret: TestSecrets.service).forTests,
            logger: logger)
        try await billing.test(.live) { billingService in
            let catalogClient = try await catalogService.calling("catalog")
            let billingClient = try await billingService.calling("billing")
            let catalogURL = "http://127.0.0.1:\(try #require(catalogClient.port))"
            let billingURL = "http://127.0.0.1:\(try #require(billingClient.port))"
            let ordering = { @Sendable (saga: FulfilmentOrchestrator.Configuration) in
                try await OrderingService.application(
                    .init(port: 0, database: orderingDatabase, catalogURL: catalogURL, billingURL: billingURL,
                          feedPollInterval: .milliseconds(20), viewsDirectory: scratchViews(), saga: saga, serviceSecret: TestSecrets.service).forTests,
                    logger: logger)
            }
            try await ordering(saga).test(.live) { orderingService in
                let orderingClient = try await orderingService.calling("ordering")
                var made = Shop(catalog: catalogClient, ordering: orderingClient, billing: billingClient, provider: providerClient)
                made.orderingDatabase = orderingDatabase
                let shop = made
                guard let secondOrdering else { return try await body(shop) }
                try await ordering(secondOrdering).test(.live) { second in
                    var both = shop
                    both.secondOrdering = try await second.calling("ordering")
                    try await body(both)
                }
            }
        }
      }
    }
}

