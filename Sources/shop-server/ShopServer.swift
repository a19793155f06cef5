import ArgumentParser
import BillingService
import CatalogService
import EventStore
import Foundation
import Hummingbird
import Logging
import OrderingService
import PaymentProviderSimulator
import ServiceKit
import ServiceLifecycle
import Telemetry
import Tracing

@main
struct ShopServer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shop-server",
        abstract: "Run one of the shop's services, or the BFF in front of them.",
        discussion: "Each service reads its settings from options or from SHOP_<SERVICE>_* environment variables (see the README).",
        subcommands: [Catalog.self, Ordering.self, Billing.self, PaymentProvider.self, BFF.self]
    )
}

/// What every service takes: where to listen, and its own database.
struct ServiceOptions: ParsableArguments {
    @Option(help: "The address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "The port to listen on (default: $SHOP_<SERVICE>_PORT, else the service's own).")
    var port: Int?

    @Option(help: "The service's PostgreSQL URL (default: $SHOP_<SERVICE>_DATABASE_URL).")
    var databaseURL: String?

    @Option(help: "The Migrations folder (default: $SHOP_MIGRATIONS_DIR, or found above the working directory or the executable).")
    var migrations: String?

    @Option(help: "Where the service keeps its SQLite views (default: $SHOP_VIEWS_DIR/<service>, else .shop/views/<service>).")
    var views: String?

    @Option(help: "Seconds to wait for the database at start (it may be restarting too) before giving up.")
    var databaseWait: Double = 60

    func validate() throws {
        guard databaseWait.isFinite, (0...3600).contains(databaseWait) else { throw ValidationError("--database-wait is 0 to 3600 seconds") }
    }

    func viewsDirectory(_ service: String) -> URL {
        if let views { return URL(fileURLWithPath: views, isDirectory: true) }
        let base = ProcessInfo.processInfo.environment["SHOP_VIEWS_DIR"] ?? ".shop/views"
        return URL(fileURLWithPath: base, isDirectory: true).appendingPathComponent(service, isDirectory: true)
    }

    func resolve(_ service: String, defaultPort: Int) throws -> (host: String, port: Int, database: DatabaseURL, logger: Logger) {
        let environment = ProcessInfo.processInfo.environment
        let prefix = "SHOP_\(service.uppercased())"
        guard let text = databaseURL ?? environment["\(prefix)_DATABASE_URL"], !text.isEmpty else {
            throw ValidationError("\(prefix)_DATABASE_URL is not set: run 'bin/db start', then 'eval \"$(bin/db env)\"' (or pass --database-url)")
        }
        let database: DatabaseURL
        do { database = try DatabaseURL(text) } catch { throw ValidationError("\(prefix)_DATABASE_URL: \(error)") }
        let port: Int
        if let explicit = self.port {
            port = explicit
        } else if let text = environment["\(prefix)_PORT"] {
            guard let parsed = Int(text) else { throw ValidationError("\(prefix)_PORT '\(text)' is not a port number") }
            port = parsed
        } else {
            port = defaultPort
        }
        guard (0...65535).contains(port) else { throw ValidationError("port \(port) is not between 0 and 65535") }
        return (host, port, database, makeLogger(service, instance: "\(host):\(port)"))
    }

    /// The secret the shop's processes sign their service tokens with: `$SHOP_SERVICE_SECRET`.
    func serviceSecret() throws -> Data { try ShopServer.serviceSecret() }

    /// Brings the service's database up to its code before it serves: the event store's schema, then the
    /// context's own. Safe when several instances start at once (the migrator takes a lock). A database that does not
    /// answer (restarting, like the process itself may be) is waited for, up to `--database-wait` seconds, each try
    /// logged; a migration that fails is not retried.
    func migrate(_ service: String, _ database: DatabaseURL, logger: Logger) async throws {
        let directory = try migrations.map { URL(fileURLWithPath: $0, isDirectory: true) } ?? Migrator.defaultDirectory()
        let migrator = try Migrator(directory: directory, folders: ["eventstore", service])
        let deadline = ContinuousClock.now + .milliseconds(Int(databaseWait * 1000))
        var pause = Duration.milliseconds(200)
        while true {
            do {
                try await migrator.migrate(database, logger: logger)
                return
            } catch let error as MigrationError {
                throw ValidationError("\(service): \(error)")
            } catch {
                let left = deadline - ContinuousClock.now
                guard left > .zero else {
                    throw ValidationError("\(service): cannot reach its database \(database) (waited \(Int(databaseWait)) s): \(describe(error))")
                }
                logger.warning("waiting for the database", metadata: ["database": "\(database)", "error": "\(describe(error))"])
                try await Task.sleep(for: min(pause, left))
                pause = min(pause * 2, .seconds(5))
            }
        }
    }
}

extension ShopServer {
    struct Catalog: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The Catalog service: products, prices, stock and reservations (port 8081).")
        @OptionGroup var options: ServiceOptions

        func run() async throws {
            let (host, port, database, logger) = try options.resolve("catalog", defaultPort: 8081)
            let secret = try options.serviceSecret()
            try await options.migrate("catalog", database, logger: logger)
            try await CatalogService.application(
                .init(host: host, port: port, database: database, viewsDirectory: options.viewsDirectory("catalog"), serviceSecret: secret),
                logger: logger
            ).serve(logger: logger)
        }
    }

    struct Ordering: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The Ordering service: carts and orders (port 8082).")
        @OptionGroup var options: ServiceOptions

        @Option(help: "Where the Catalog service runs, for its product feed (default: $SHOP_CATALOG_URL, else http://127.0.0.1:8081).")
        var catalogURL: String?

        @Option(help: "Where the Billing service runs, for payments (default: $SHOP_BILLING_URL, else http://127.0.0.1:8083).")
        var billingURL: String?

        func run() async throws {
            let (host, port, database, logger) = try options.resolve("ordering", defaultPort: 8082)
            let catalog = try Self.serviceURL(catalogURL, "SHOP_CATALOG_URL", "http://127.0.0.1:8081", "Catalog")
            let billing = try Self.serviceURL(billingURL, "SHOP_BILLING_URL", "http://127.0.0.1:8083", "Billing")
            let secret = try options.serviceSecret()
            try await options.migrate("ordering", database, logger: logger)
            try await OrderingService.application(
                .init(host: host, port: port, database: database, catalogURL: catalog, billingURL: billing,
                      viewsDirectory: options.viewsDirectory("ordering"), serviceSecret: secret),
                logger: logger
            ).serve(logger: logger)
        }

        static func serviceURL(_ option: String?, _ variable: String, _ fallback: String, _ name: String) throws -> String {
            let text = option ?? ProcessInfo.processInfo.environment[variable] ?? fallback
            guard let url = URL(string: text), url.scheme == "http" || url.scheme == "https", url.host != nil else {
                throw ValidationError("the \(name) URL '\(text)' is not an http(s) URL")
            }
            return text
        }
    }

    struct Billing: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The Billing service: payments through the payment provider (port 8083).")
        @OptionGroup var options: ServiceOptions

        @Option(help: "Where the payment provider answers (default: $SHOP_PROVIDER_URL, else http://127.0.0.1:8084).")
        var providerURL: String?

        func run() async throws {
            let (host, port, database, logger) = try options.resolve("billing", defaultPort: 8083)
            let provider = try Ordering.serviceURL(providerURL, "SHOP_PROVIDER_URL", "http://127.0.0.1:8084", "payment provider")
            let secret = try options.serviceSecret()
            try await options.migrate("billing", database, logger: logger)
            try await BillingService.application(
                .init(host: host, port: port, database: database, providerURL: provider, viewsDirectory: options.viewsDirectory("billing"),
                      serviceSecret: secret),
                logger: logger
            ).serve(logger: logger)
        }
    }

    struct PaymentProvider: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "payment-provider",
            abstract: "The payment provider simulator Billing calls, with test cards and durable state (port 8084).")

        @Option(help: "The address to listen on.") var host = "127.0.0.1"
        @Option(help: "The port to listen on (default: $SHOP_PROVIDER_PORT, else 8084).") var port: Int?
        @Option(help: "Its SQLite file (default: $SHOP_PROVIDER_FILE, else .shop/provider/provider.sqlite).") var file: String?

        func run() async throws {
            let environment = ProcessInfo.processInfo.environment
            let port = try self.port ?? environment["SHOP_PROVIDER_PORT"].map {
                guard let port = Int($0) else { throw ValidationError("SHOP_PROVIDER_PORT '\($0)' is not a port number") }
                return port
            } ?? 8084
            guard (0...65535).contains(port) else { throw ValidationError("port \(port) is not between 0 and 65535") }
            let path = file ?? environment["SHOP_PROVIDER_FILE"] ?? ".shop/provider/provider.sqlite"
            let logger = makeLogger("payment-provider", instance: "\(host):\(port)")
            let simulator: PaymentProviderSimulator
            do { simulator = try PaymentProviderSimulator(file: URL(fileURLWithPath: path)) } catch {
                throw ValidationError("cannot open the provider's file \(path): \(error)")
            }
            try await ProviderServer.application(.init(host: host, port: port), simulator: simulator, logger: logger).serve(logger: logger)
        }
    }
}

extension ShopServer {
    /// `$SHOP_SERVICE_SECRET`, at least 32 bytes: every service checks its callers' tokens with it, and the BFF and
    /// Ordering sign theirs.
    static func serviceSecret() throws -> Data {
        guard let secret = ProcessInfo.processInfo.environment["SHOP_SERVICE_SECRET"], secret.utf8.count >= 32 else {
            throw ValidationError("SHOP_SERVICE_SECRET must be set to at least 32 bytes (bin/db env sets one)")
        }
        return Data(secret.utf8)
    }
}

/// The process's logger: JSON lines (`SHOP_LOG_FORMAT=text` for swift-log's plain ones) on stderr, at
/// `SHOP_LOG_LEVEL` (info by default), each naming the service and this instance.
func makeLogger(_ service: String, instance: String) -> Logger {
    let environment = ProcessInfo.processInfo.environment
    if environment["SHOP_LOG_FORMAT"] != "text" {
        LoggingSystem.bootstrap { _ in JSONLogHandler(service: service, instance: instance) }
    }
    var logger = Logger(label: service)
    logger.logLevel = environment["SHOP_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
    return logger
}

extension ApplicationProtocol {
    /// Runs the application until SIGTERM or SIGINT; with `SHOP_OTLP_ENDPOINT` (an OpenTelemetry collector's
    /// base URL, such as http://127.0.0.1:4318), its spans are sent there. Without it, no tracer is installed and
    /// spans cost nothing.
    func serve(logger: Logger) async throws {
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: self)]
        if let endpoint = ProcessInfo.processInfo.environment["SHOP_OTLP_ENDPOINT"], !endpoint.isEmpty {
            let exporter = OTLPExporter(endpoint: endpoint, service: logger.label, logger: logger)
            InstrumentationSystem.bootstrap(ShopTracer(sink: exporter.export))
            services.append(.init(service: exporter))
        }
        try await ServiceGroup(configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger)).run()
    }
}
