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

/// Reads through the BFF (the product listing, cached and uncached, and the order page that combines three services'
/// answers) at rising concurrency, beside a bare Hummingbird route that answers the same bytes as the listing from
/// memory, measured in the same run on the same machine, with the load from another process.
struct BFFBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bff", abstract: "BFF reads against a bare Hummingbird route.")

    @Option(help: "Catalog's scratch database (bin/bench makes one).") var catalogDatabaseURL: String
    @Option(help: "Ordering's scratch database.") var orderingDatabaseURL: String
    @Option(help: "Billing's scratch database.") var billingDatabaseURL: String

    @Option(help: "Seconds each measurement runs.") var seconds: Double = 3
    @Option(parsing: .upToNextOption, help: "The concurrency levels to measure.") var concurrency: [Int] = [1, 4, 16, 64]
    @Option(help: "Rounds per level (at least 3), the routes' order rotating.") var rounds: Int = 3

    func validate() throws {
        guard rounds >= 3 else { throw ValidationError("--rounds is at least 3") }
    }

    /// Runs `shop-bench bff-load` (this executable) against `url`: the load comes from another process, so it takes no
    /// thread from the servers it measures.
    static func loadFromAnotherProcess(_ url: String, token: String, concurrency: Int, seconds: Double) async throws -> (rate: Double, p99: Double) {
        let process = Process(), output = Pipe()
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL.resolvingSymlinksInPath()
        if !FileManager.default.isExecutableFile(atPath: process.executableURL!.path), let found = Bundle.main.executableURL { process.executableURL = found }
        process.arguments = ["bff-load", "--url", url, "--token", token, "--concurrency", String(concurrency), "--seconds", String(seconds)]
        process.standardOutput = output
        try process.run()
        let data = try await Task.detached { output.fileHandleForReading.readDataToEndOfFile() }.value
        process.waitUntilExit()
        guard process.terminationStatus == 0, let text = String(data: data, encoding: .utf8),
              case let parts = text.split(separator: " "), parts.count == 2, let rate = Double(parts[0]), let p99 = Double(parts[1].trimmingCharacters(in: .whitespacesAndNewlines))
        else { throw BenchError("shop-bench bff-load failed (\(process.terminationStatus)): \(String(decoding: data, as: UTF8.self))") }
        return (rate, p99)
    }

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
        // The same BFF keeping no catalog page: every listing goes to Catalog's view.
        let uncachedPort = freePort(), uncachedBFF = "http://127.0.0.1:\(uncachedPort)"
        let uncached = try await BFFService.application(
            .init(port: uncachedPort, tokenSecret: secret, serviceSecret: serviceSecret, catalog: [base.catalog], ordering: [base.ordering],
                  billing: [base.billing], requestsPerSecond: 1_000_000, burst: 1_000_000, catalogPageLifetime: .zero), logger: logger)
        // The baseline: the listing's bytes, answered from memory by a route that does nothing else.
        let listing = Mutex(ByteBuffer())
        let router = Router()
        router.get("/products") { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: listing.withLock { $0 }))
        }
        let bareApp = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: ports.bare)), logger: logger)
        let services = ServiceGroup(configuration: .init(
            services: shop.services + [.init(service: gateway), .init(service: uncached), .init(service: bareApp)],
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
                    from memory. The services and both BFFs (one keeping catalog pages for a second, one keeping none) run in this process \
                    on \(ProcessInfo.processInfo.activeProcessorCount) cores; the load comes from another process (shop-bench bff-load). \
                    \(rounds) rounds of \(format(seconds, 1)) s per route and level, the routes' order rotating; rates are medians, ratios \
                    (to the bare route of the same round) min / median / max.

                    """)
                say("route".padded(30) + "concurrency".leftPadded(11) + "requests/s".leftPadded(13) + "p99 ms".leftPadded(9) + "ratio to bare".leftPadded(24))
                let routes = [("bare route", bare + "/products"), ("BFF listing, cached 1 s", bff + "/web/v1/products?limit=50"),
                              ("BFF listing, uncached", uncachedBFF + "/web/v1/products?limit=50"), ("BFF order page", bff + "/web/v1/orders/bench-order")]
                var worstUncached = Double.infinity
                for level in levels {
                    var rates = Array(repeating: [Double](), count: routes.count), p99s = rates, ratios = rates
                    for round in 0..<rounds {
                        var measured = Array(repeating: (rate: 0.0, p99: 0.0), count: routes.count)
                        let order = (0..<routes.count).map { (round + $0) % routes.count }
                        for index in order {
                            measured[index] = try await Self.loadFromAnotherProcess(routes[index].1, token: token, concurrency: level, seconds: seconds)
                        }
                        for index in routes.indices {
                            rates[index].append(measured[index].rate)
                            p99s[index].append(measured[index].p99)
                            ratios[index].append(measured[index].rate / measured[0].rate)
                        }
                    }
                    worstUncached = min(worstUncached, median(ratios[2]))
                    for index in routes.indices {
                        let spread = "\(format(ratios[index].min()!, 2)) / \(format(median(ratios[index]), 2)) / \(format(ratios[index].max()!, 2))"
                        say(routes[index].0.padded(30) + String(level).leftPadded(11) + format(median(rates[index]), 0).leftPadded(13)
                            + ms(median(p99s[index])).leftPadded(9) + spread.leftPadded(24))
                    }
                }
                say("\nProduct listing through the BFF uncached, at its worst level: \(format(worstUncached, 2)) of the bare route (goal ≥ 0.3: \(worstUncached >= 0.3 ? "met" : "NOT MET"))")
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

/// The load of ``BFFBench``, in a process of its own: prints `<requests per second> <p99 seconds>`.
struct BFFLoad: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "bff-load", abstract: "The load of `shop-bench bff` (run by it).", shouldDisplay: false)

    @Option var url: String
    @Option var token: String
    @Option var concurrency: Int
    @Option var seconds: Double

    func run() async throws {
        let load = Load(token: token)
        do {
            let result = try await load.measure(url, concurrency: concurrency, for: .milliseconds(Int(seconds * 1000)))
            try await load.client.shutdown()
            print("\(result.rate) \(result.p99)")
        } catch {
            try? await load.client.shutdown()
            throw error
        }
    }
}
