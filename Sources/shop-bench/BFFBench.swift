import ArgumentParser
import AsyncHTTPClient
import BFF
import BillingService
import CatalogService
import EventStore
import Foundation
import Identity
import Gateway
import Hummingbird
import Logging
import NIOCore
import NIOHTTP1
import OrderingService
import ServiceLifecycle
import Synchronization

/// Reads through the BFF (the product listing, and the order page that combines three services' answers) at
/// rising concurrency, beside a bare Hummingbird route that answers the same bytes as the listing from memory,
/// measured in the same run on the same machine.
struct BFFBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bff", abstract: "BFF reads against a bare Hummingbird route.")

    @Option(help: "Catalog's scratch database (bin/bench makes one).") var catalogDatabaseURL: String
    @Option(help: "Ordering's scratch database.") var orderingDatabaseURL: String
    @Option(help: "Billing's scratch database.") var billingDatabaseURL: String

    @Option(help: "Seconds each measurement runs.") var seconds: Double = 3
    @Option(parsing: .upToNextOption, help: "The concurrency levels to measure.") var concurrency: [Int] = [1, 4, 16, 64]

    func run() async throws {
        var logger = Logger(label: "shop-bench")
        logger.logLevel = .critical
        let urls = try [("catalog", catalogDatabaseURL), ("ordering", orderingDatabaseURL), ("billing", billingDatabaseURL)].map { name, text in
            (name, try DatabaseURL(text))
        }
        for (name, url) in urls {
            try await Migrator(directory: try Migrator.defaultDirectory(), folders: ["eventstore", name]).migrate(url, logger: logger)
        }
        let views = FileManager.default.temporaryDirectory.appendingPathComponent("bench-bff-\(UUID())")
        defer { try? FileManager.default.removeItem(at: views) }
        let shop = try await BenchServices.make(databases: urls.map(\.1), views: views, logger: logger)
        let base = shop.base, serviceSecret = BenchServices.serviceSecret
        let ports = (gateway: freePort(), bare: freePort())
        let bff = "http://127.0.0.1:\(ports.gateway)", bare = "http://127.0.0.1:\(ports.bare)"
        let secret = Data("a-benchmark-secret-long-enough-for-hs256".utf8)
        let gateway = try await BFFService.application(
            .init(port: ports.gateway, tokenSecret: secret, serviceSecret: serviceSecret, catalog: [base.catalog], ordering: [base.ordering], billing: [base.billing],
                  requestsPerSecond: 1_000_000, burst: 1_000_000), logger: logger)
        // The baseline: the listing's bytes, answered from memory by a route that does nothing else.
        let listing = Mutex(ByteBuffer())
        let router = Router()
        router.get("/products") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: listing.withLock { $0 }))
        }
        let bareApp = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: ports.bare)), logger: logger)
        let services = ServiceGroup(configuration: .init(
            services: shop.services + [.init(service: gateway), .init(service: bareApp)],
            logger: logger))
        let levels = concurrency, duration = Duration.milliseconds(Int(seconds * 1000))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await services.run() }
            defer { Task { await services.triggerGracefulShutdown() } }
            let client = Client(base: base, identity: try await ServiceIdentity(name: "shop-bench", secret: serviceSecret))
            try await client.waitUntilUp()
            for index in 1...50 {
                let sku = String(format: "BENCH-%03d", index)
                try await client.expect(201, .POST, base.catalog + "/products",
                                        #"{"sku":"\#(sku)","name":"Bench mug \#(index)","description":"A mug to measure with","price":{"amount":\#(1000 + index),"currency":"EUR"}}"#)
                try await client.expect(200, .POST, base.catalog + "/products/\(sku)/stock", #"{"quantity":1000}"#)
            }
            while try await client.send(.POST, base.ordering + "/carts/kim/items", #"{"sku":"BENCH-050","quantity":1}"#).status != 200 {
                try await Task.sleep(for: .milliseconds(20))  // polling: Ordering's copy of the catalog follows Catalog's feed
            }
            try await client.expect(201, .POST, base.ordering + "/carts/kim/checkout", #"{"order":"bench-order","card":"4242424242424242"}"#)
            let token = try await TokenSigner(secret: secret).issue(Claims(subject: "kim", role: .customer, issuedAt: Date(), expiresAt: Date() + 3600))
            let load = Load(token: token)
            do {
                // The listing must show all 50 products before it is measured (Catalog's view follows its events).
                while true {
                    let body = try await load.get(bff + "/web/v1/products?limit=50")
                    if body.readableBytes > 0, let page = try? JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any],
                        (page["products"] as? [Any])?.count == 50 {
                        listing.withLock { $0 = body }
                        break
                    }
                    try await Task.sleep(for: .milliseconds(20))
                }
                while try await client.send(.GET, base.ordering + "/orders/bench-order?wait=10").body["status"] as? String != "confirmed" {}

                say("""
                    Reads through the BFF against a bare Hummingbird route answering the listing's bytes (\(listing.withLock { $0.readableBytes }) bytes) \
                    from memory; everything in this process on \(ProcessInfo.processInfo.activeProcessorCount) cores, \(format(seconds, 0)) s per figure.

                    """)
                say("route                      concurrency   requests/s   p99 ms   ratio to bare")
                var worst = Double.infinity
                for level in levels {
                    let baseline = try await load.measure(bare + "/products", concurrency: level, for: duration)
                    let products = try await load.measure(bff + "/web/v1/products?limit=50", concurrency: level, for: duration)
                    let page = try await load.measure(bff + "/web/v1/orders/bench-order", concurrency: level, for: duration)
                    worst = min(worst, products.rate / baseline.rate)
                    for (name, result) in [("bare route", baseline), ("BFF product listing", products), ("BFF order page", page)] {
                        say(name.padded(27) + String(level).leftPadded(11) + format(result.rate, 0).leftPadded(13) + ms(result.p99).leftPadded(9)
                            + format(result.rate / baseline.rate, 2).leftPadded(16))
                    }
                }
                say("\nProduct listing through the BFF, at its worst level: \(format(worst, 2)) of the bare route (goal ≥ 0.3: \(worst >= 0.3 ? "met" : "NOT MET"))")
            } catch {
                try? await load.client.shutdown()
                throw error
            }
            try await load.client.shutdown()
        }
    }
}

/// The load: `concurrency` clients each sending GETs one after another, on their own connections.
struct Load: Sendable {
    let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(
        connectionPool: .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: 256)))
    let token: String

    func get(_ url: String) async throws -> ByteBuffer {
        var request = HTTPClientRequest(url: url)
        request.headers.add(name: "Authorization", value: "Bearer \(token)")
        let response = try await client.execute(request, timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 8 << 20)
        guard response.status == .ok else { throw BenchError("GET \(url) answered \(response.status): \(String(buffer: body))") }
        return body
    }

    func measure(_ url: String, concurrency: Int, for duration: Duration) async throws -> (rate: Double, p99: Double) {
        for _ in 0..<concurrency { _ = try await get(url) }  // warm: connections open
        let started = ContinuousClock.now, deadline = started + duration
        let latencies = try await withThrowingTaskGroup(of: [Double].self) { group in
            for _ in 0..<concurrency {
                group.addTask {
                    var latencies: [Double] = []
                    while ContinuousClock.now < deadline {
                        let sent = ContinuousClock.now
                        _ = try await get(url)
                        latencies.append((ContinuousClock.now - sent).seconds)
                    }
                    return latencies
                }
            }
            return try await group.reduce(into: [Double]()) { $0 += $1 }
        }
        return (Double(latencies.count) / (ContinuousClock.now - started).seconds, percentile(latencies, 0.99))
    }
}
