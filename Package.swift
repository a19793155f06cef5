// swift-tools-version:6.1
import PackageDescription

/// `SHOP_FUZZ=1` (bin/fuzz, into .build-fuzz): the shop's own modules are instrumented for libFuzzer, and the fuzz
/// targets' executable, shop-fuzz, is built. Never in an ordinary build.
let fuzzing = Context.environment["SHOP_FUZZ"] == "1"
let instrumented: [SwiftSetting] = fuzzing ? [.unsafeFlags(["-sanitize=fuzzer"])] : []

let package = Package(
    name: "swift-shop",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "shop-server", targets: ["shop-server"]),
        .executable(name: "shop-admin", targets: ["shop-admin"]),
        .executable(name: "shop-bench", targets: ["shop-bench"]),
        .executable(name: "shop", targets: ["shop"]),
    ],
    dependencies: [
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-extras.git", from: "1.35.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-distributed-tracing.git", from: "1.7.3"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/apple/swift-collections.git", from: "1.6.0"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.7.1"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
    ],
    targets: [
        // What every layer shares and nothing else owns: the request context (correlation, causation and trace ids, who
        // acts), a JSON value, the shop's JSON dates, and a change signal to wait on. Foundation only.
        .target(name: "Essentials"),
        // Pure event-sourcing vocabulary: deciders and the event codec. No I/O; domain targets may import it.
        .target(name: "EventSourcing", dependencies: ["Essentials"]),
        // Value types every context speaks (Money). Pure.
        .target(name: "SharedKernel"),
        // The published language between contexts: integration events and their shapes. Pure.
        .target(name: "Contracts", dependencies: ["SharedKernel"]),
        // The bounded contexts' domains: deciders only, no NIO, SQL or HTTP. No context imports another.
        .target(name: "Catalog", dependencies: [
            "EventSourcing", "SharedKernel", .product(name: "HashTreeCollections", package: "swift-collections"),
        ], path: "Contexts/Catalog/Domain"),
        .target(name: "Ordering", dependencies: ["EventSourcing", "SharedKernel"], path: "Contexts/Ordering/Domain"),
        .target(name: "Billing", dependencies: ["EventSourcing", "SharedKernel"], path: "Contexts/Billing/Domain"),
        // The PostgreSQL event store, migrations and the command handler loop.
        .target(
            name: "EventStore",
            dependencies: [.product(name: "NIOCore", package: "swift-nio"), 
                "EventSourcing", "Essentials",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ]
        ),
        // The read side's runtime: projectors that feed SQLite views from an event store, exactly once.
        .target(
            name: "Projections",
            dependencies: ["Essentials", .product(name: "Tracing", package: "swift-distributed-tracing"), 
                "Telemetry",
                "EventStore",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // The views, one folder each: schema and projector.
        .target(
            name: "ProductListing",
            dependencies: ["EventStore", "Catalog", "Projections", .product(name: "GRDB", package: "GRDB.swift")],
            path: "ReadModels/ProductListing"
        ),
        .target(
            name: "OrderHistory",
            dependencies: ["Essentials", "EventStore", "Ordering", "Projections", .product(name: "GRDB", package: "GRDB.swift")],
            path: "ReadModels/OrderHistory"
        ),
        .target(
            name: "SalesSummary",
            dependencies: ["Essentials", "EventStore", "Ordering", "Projections", .product(name: "GRDB", package: "GRDB.swift")],
            path: "ReadModels/SalesSummary"
        ),
        .target(
            name: "PaymentLedger",
            dependencies: ["Essentials", "EventStore", "Billing", "Projections", .product(name: "GRDB", package: "GRDB.swift")],
            path: "ReadModels/PaymentLedger"
        ),
        // HTTP plumbing every service shares: problem documents, bodies, idempotency, concurrency, health.
        // Traces: W3C propagation, the shop's tracer, and the OTLP exporter.
        .target(
            name: "Telemetry",
            dependencies: [.product(name: "NIOCore", package: "swift-nio"), 
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
            ]
        ),
        .target(
            name: "ServiceKit",
            dependencies: ["Essentials", .product(name: "Tracing", package: "swift-distributed-tracing"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                "Telemetry",
                "SharedKernel",
                "Identity",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ]
        ),
        // What a service built on an event store and SQLite views adds at its edge: idempotent commands, health and
        // readiness from the store and the views, published feeds, read-your-writes, the store's errors as problems.
        .target(
            name: "ServiceRuntime",
            dependencies: ["Essentials", "EventSourcing", "EventStore", "Projections", "ServiceKit",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        // Who is calling: customers' and admins' bearer tokens, and the tokens the shop's services present to each other.
        .target(name: "Identity", dependencies: [.product(name: "JWTKit", package: "jwt-kit")]),
        // Calling another service's instances: discovered through DNS, health-checked, balanced, behind a circuit breaker
        // and a bulkhead, each call with a service token. Used by the BFFs' gateway and by the saga.
        .target(
            name: "ServiceClient",
            dependencies: ["Identity",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ]
        ),
        // The BFFs' gateway core: bearer tokens, rate limits, the downstream services, the documents.
        .target(
            name: "Gateway",
            dependencies: ["SharedKernel", 
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                "ServiceKit", "ServiceClient", "Essentials", "Telemetry", "Identity", "Contracts",
            ]
        ),
        // The BFF of the shop command-line client.
        .target(
            name: "CLIBFF",
            dependencies: ["Contracts", "SharedKernel", "Gateway", "ServiceKit", "Essentials", .product(name: "Hummingbird", package: "hummingbird")]
        ),
        // The BFF of the web client.
        .target(
            name: "WebBFF",
            dependencies: ["ServiceClient", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"), "Contracts", "SharedKernel", "Gateway", "ServiceKit", "Essentials", .product(name: "Hummingbird", package: "hummingbird")]
        ),
        // The BFFs on one port: `shop-server bff`.
        // The web shop's pages, served by the BFF at `/`: the storefront and the back office as server-rendered HTML
        // (Mustache templates), signed in with a session cookie; they call the services as the web BFF does.
        .target(
            name: "Storefront",
            dependencies: ["ServiceClient", "Contracts", "SharedKernel", "Gateway", "WebBFF", "ServiceKit", "Identity",
                           .product(name: "Hummingbird", package: "hummingbird"), .product(name: "Mustache", package: "swift-mustache"),
                           .product(name: "HTTPTypes", package: "swift-http-types"), .product(name: "Crypto", package: "swift-crypto"),
                           .product(name: "Logging", package: "swift-log")],
            resources: [.embedInCode("Templates"), .embedInCode("Static")]
        ),
        .target(
            name: "BFF",
            dependencies: ["ServiceClient", "Identity", .product(name: "Logging", package: "swift-log"), "Gateway", "CLIBFF", "WebBFF", "Storefront", "ServiceKit", .product(name: "Hummingbird", package: "hummingbird")]
        ),
        // Each context's service: its domain on the wire.
        .target(
            name: "CatalogService",
            dependencies: ["Identity", .product(name: "Logging", package: "swift-log"), "SharedKernel", 
                "Catalog", "Contracts", "ServiceKit", "ServiceRuntime", "EventStore", "Projections", "ProductListing",
                .product(name: "Hummingbird", package: "hummingbird"),
            ],
            path: "Contexts/Catalog/Service"
        ),
        .target(
            name: "OrderingService",
            dependencies: ["ServiceClient", "Identity", .product(name: "Logging", package: "swift-log"), .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"), .product(name: "PostgresNIO", package: "postgres-nio"), .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"), "SharedKernel", 
                "Ordering", "Contracts", "ServiceKit", "ServiceRuntime", "Essentials", "EventStore", "Projections", "OrderHistory", "SalesSummary", "Telemetry",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
            ],
            path: "Contexts/Ordering/Service"
        ),
        .target(
            name: "BillingService",
            dependencies: ["Identity", .product(name: "Logging", package: "swift-log"), 
                "Billing", "Contracts", "ServiceKit", "ServiceRuntime", "EventStore", "Projections", "PaymentLedger", "SharedKernel",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Contexts/Billing/Service"
        ),
        // The payment provider Billing calls, simulated with test cards: a process of its own, with its own storage.
        .target(
            name: "PaymentProviderSimulator",
            dependencies: [.product(name: "Logging", package: "swift-log"), 
                "ServiceKit",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "GRDB", package: "GRDB.swift"),
            ]
        ),
        .executableTarget(
            name: "shop-server",
            dependencies: [.product(name: "Logging", package: "swift-log"), 
                "Telemetry",
                "CatalogService",
                "OrderingService",
                "BillingService",
                "PaymentProviderSimulator",
                "BFF",
                "ServiceKit",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Tracing", package: "swift-distributed-tracing"),
                "EventStore",
            ]
        ),
        .executableTarget(
            name: "shop-admin",
            dependencies: ["Essentials", .product(name: "Logging", package: "swift-log"), .product(name: "NIOCore", package: "swift-nio"), "SharedKernel", 
                "EventStore", "EventSourcing", "Ordering", "OrderingService", "Identity", "Telemetry",
                "Projections", "ProductListing", "OrderHistory", "SalesSummary", "PaymentLedger",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ]
        ),
        .executableTarget(
            name: "shop-bench",
            dependencies: ["Essentials", .product(name: "Logging", package: "swift-log"), .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOFoundationCompat", package: "swift-nio"), .product(name: "PostgresNIO", package: "postgres-nio"), 
                "EventStore", "Projections", "OrderHistory", "Ordering", "Catalog", "SharedKernel",
                "CatalogService", "OrderingService", "BillingService", "BFF", "Gateway", "Identity", "PaymentProviderSimulator",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .executableTarget(
            name: "shop",
            dependencies: [.product(name: "NIOCore", package: "swift-nio"), 
                "SharedKernel",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "EventSourcingTests", dependencies: ["Essentials", "EventSourcing"]),
        .testTarget(
            name: "GatewayTests",
            dependencies: ["ServiceClient", "Essentials", .product(name: "HummingbirdCore", package: "hummingbird"), .product(name: "Hummingbird", package: "hummingbird"), .product(name: "Logging", package: "swift-log"), "Gateway", "Identity", "EventStore", "ServiceKit", "TestSupport", .product(name: "HummingbirdTesting", package: "hummingbird")]
        ),
        .testTarget(name: "SharedKernelTests", dependencies: ["SharedKernel"]),
        .testTarget(name: "ContractsTests", dependencies: ["Contracts"]),
        .testTarget(name: "IdentityTests", dependencies: ["Identity", .product(name: "Crypto", package: "swift-crypto")]),
        .testTarget(name: "CatalogTests", dependencies: ["EventSourcing", "SharedKernel", "Catalog"]),
        .testTarget(name: "OrderingTests", dependencies: ["SharedKernel", "Ordering"]),
        .testTarget(name: "BillingTests", dependencies: ["SharedKernel", "Billing"]),
        .testTarget(name: "PaymentProviderSimulatorTests", dependencies: ["PaymentProviderSimulator"]),
        .testTarget(
            name: "OrderingServiceTests",
            dependencies: ["EventStore", .product(name: "HTTPTypes", package: "swift-http-types"), .product(name: "Hummingbird", package: "hummingbird"), "SharedKernel", "OrderingService", "CatalogService", "Contracts", "TestSupport", "Identity", .product(name: "HummingbirdTesting", package: "hummingbird")]
        ),
        // The fulfilment saga across the three services, each on its own database and port.
        .testTarget(
            name: "SagaTests",
            dependencies: [.product(name: "HTTPTypes", package: "swift-http-types"), .product(name: "Hummingbird", package: "hummingbird"), "OrderingService", "CatalogService", "BillingService", "Ordering", "SharedKernel", "EventStore", "TestSupport", "ShopSupport",
                           .product(name: "HummingbirdTesting", package: "hummingbird"), .product(name: "PostgresNIO", package: "postgres-nio")]
        ),
        // The BFF in front of the three services.
        .testTarget(
            name: "BFFTests",
            dependencies: ["CatalogService", "CLIBFF", "WebBFF", "Storefront", "SharedKernel", "ServiceRuntime", "Essentials", "EventSourcing", .product(name: "HTTPTypes", package: "swift-http-types"), .product(name: "Hummingbird", package: "hummingbird"), .product(name: "Tracing", package: "swift-distributed-tracing"), "BFF", "Gateway", "Identity", "OrderingService", "Telemetry", "TestSupport", "ShopSupport", .product(name: "HummingbirdTesting", package: "hummingbird"),
                           .product(name: "AsyncHTTPClient", package: "async-http-client")]
        ),
        // The three services on their own databases, live, for the tests that need the whole shop.
        .target(
            name: "ShopSupport",
            dependencies: ["EventStore", .product(name: "HTTPTypes", package: "swift-http-types"), .product(name: "Hummingbird", package: "hummingbird"), "OrderingService", "CatalogService", "BillingService", "PaymentProviderSimulator", "Ordering", "TestSupport",
                           .product(name: "HummingbirdTesting", package: "hummingbird")],
            path: "Tests/ShopSupport"
        ),
        .testTarget(
            name: "BillingServiceTests",
            dependencies: ["EventStore", .product(name: "HTTPTypes", package: "swift-http-types"), .product(name: "Hummingbird", package: "hummingbird"), "BillingService", "Billing", "Contracts", "PaymentProviderSimulator", "TestSupport",
                           .product(name: "HummingbirdTesting", package: "hummingbird")]
        ),
        .testTarget(
            name: "CatalogServiceTests",
            dependencies: ["ServiceRuntime", "Essentials", "EventStore", .product(name: "HTTPTypes", package: "swift-http-types"), .product(name: "Hummingbird", package: "hummingbird"), "CatalogService", "Catalog", "ProductListing", "Projections", "SharedKernel", "TestSupport", "Identity",
                           .product(name: "HummingbirdTesting", package: "hummingbird"),
                           .product(name: "AsyncHTTPClient", package: "async-http-client")]
        ),
        // Helpers the integration tests share: a database per test in the PostgreSQL bin/test starts.
        .target(
            name: "TestSupport",
            dependencies: ["ServiceRuntime", "Essentials", .product(name: "HTTPTypes", package: "swift-http-types"), .product(name: "Hummingbird", package: "hummingbird"), .product(name: "Logging", package: "swift-log"), 
                "EventStore",
                "Identity",
                "ServiceKit",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ],
            path: "Tests/TestSupport"
        ),
        .testTarget(name: "EventStoreTests", dependencies: ["Essentials", "EventSourcing", .product(name: "PostgresNIO", package: "postgres-nio"), "EventStore", "TestSupport"]),
        .testTarget(
            name: "ReadModelsTests",
            dependencies: ["EventStore", "Projections", "SharedKernel", "OrderHistory", "SalesSummary", "PaymentLedger", "Ordering", "Billing", "TestSupport",
                           .product(name: "GRDB", package: "GRDB.swift")]
        ),
        // Tests that run the built executables as real processes.
        .testTarget(
            name: "ProcessTests",
            dependencies: ["EventStore", .product(name: "NIOCore", package: "swift-nio"), .product(name: "PostgresNIO", package: "postgres-nio"),
                "Catalog", "ProductListing", "Projections", "SharedKernel", "TestSupport", "Identity",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
            ]
        ),
        .testTarget(name: "ProjectionsTests", dependencies: ["Essentials", "EventStore", .product(name: "Logging", package: "swift-log"), "Projections", "TestSupport", .product(name: "GRDB", package: "GRDB.swift")]),
    ],
    swiftLanguageModes: [.v6]
)

if fuzzing {
    package.targets.append(.executableTarget(
        name: "shop-fuzz",
        dependencies: ["Identity", "ServiceKit", "SharedKernel", "Gateway", "CatalogService", "OrderingService", "BillingService",
                       .product(name: "Crypto", package: "swift-crypto")],
        swiftSettings: instrumented, linkerSettings: [.unsafeFlags(["-sanitize=fuzzer"])]))
    for target in package.targets where ["Identity", "ServiceKit", "SharedKernel", "Gateway", "CatalogService", "OrderingService",
                                         "BillingService", "EventSourcing", "Contracts"].contains(target.name) {
        target.swiftSettings = (target.swiftSettings ?? []) + instrumented
    }
}
