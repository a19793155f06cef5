import BillingService
import CatalogService
import EventStore
import Foundation
import Hummingbird
import Logging
import OrderingService
import PaymentProviderSimulator
import ServiceLifecycle

/// The three services and the payment provider simulator as the benchmarks run them: in one process, each on a port
/// of its own (and each service on its own database), talking real HTTP with service tokens, as in production.
struct BenchServices {
    let base: (catalog: String, ordering: String, billing: String)
    /// Run them (in a `ServiceGroup`).
    let services: [ServiceGroupConfiguration.ServiceConfiguration]

    static let serviceSecret = Data("a-benchmark-service-secret-long-enough-for-hs256".utf8)

    /// `databases`: Catalog's, Ordering's and Billing's, in that order, migrated.
    static func make(databases: [DatabaseURL], views: URL, logger: Logger) async throws -> BenchServices {
        let ports = (freePort(), freePort(), freePort(), freePort())
        let base = (catalog: "http://127.0.0.1:\(ports.0)", ordering: "http://127.0.0.1:\(ports.1)", billing: "http://127.0.0.1:\(ports.2)")
        let catalog = try await CatalogService.application(
            .init(port: ports.0, database: databases[0], viewsDirectory: views.appendingPathComponent("catalog"), serviceSecret: serviceSecret),
            logger: logger)
        let ordering = try await OrderingService.application(
            .init(port: ports.1, database: databases[1], catalogURL: base.catalog, billingURL: base.billing, feedPollInterval: .milliseconds(50),
                  viewsDirectory: views.appendingPathComponent("ordering"), serviceSecret: serviceSecret),
            logger: logger)
        let billing = try await BillingService.application(
            .init(port: ports.2, database: databases[2], providerURL: "http://127.0.0.1:\(ports.3)",
                  viewsDirectory: views.appendingPathComponent("billing"), serviceSecret: serviceSecret),
            logger: logger)
        let simulator = try PaymentProviderSimulator(file: views.appendingPathComponent("provider.sqlite"))
        let provider = ProviderServer.application(.init(port: ports.3), simulator: simulator, logger: logger)
        return BenchServices(base: base, services: [.init(service: catalog), .init(service: ordering), .init(service: billing), .init(service: provider)])
    }
}
