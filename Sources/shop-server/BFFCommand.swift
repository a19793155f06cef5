import ArgumentParser
import BFF
import Foundation
import Hummingbird
import Logging

extension ShopServer {
    struct BFF: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "bff",
            abstract: "The BFFs (/cli/v1 and /web/v1), the single entry point in front of the services (port 8080).",
            discussion: """
                Each service's instances: --catalog-urls, --ordering-urls, --billing-urls (comma-separated), or \
                SHOP_<SERVICE>_URLS, else SHOP_<SERVICE>_URL, else the service's local default. Bearer tokens are \
                checked with $SHOP_TOKEN_SECRET (at least 32 bytes; `shop-admin tokens issue` signs them); its calls to the \
                services carry tokens signed with $SHOP_SERVICE_SECRET.
                """)

        @Option(help: "The address to listen on.") var host = "127.0.0.1"
        @Option(help: "The port to listen on (default: $SHOP_BFF_PORT, else 8080).") var port: Int?
        @Option(name: .customLong("catalog-urls"), help: "Catalog's instances.") var catalogURLs: String?
        @Option(name: .customLong("ordering-urls"), help: "Ordering's instances.") var orderingURLs: String?
        @Option(name: .customLong("billing-urls"), help: "Billing's instances.") var billingURLs: String?
        @Option(help: "Requests per second each client may send (default: $SHOP_BFF_RATE, else 20).") var rate: Double?
        @Option(help: "How many requests a client may send at once above its rate (default: $SHOP_BFF_BURST, else 40).") var burst: Int?
        @Option(help: "Milliseconds the BFFs keep a public catalog page (default: $SHOP_BFF_CACHE_MS, else 1000; 0: not at all).")
        var cacheMs: Int?
        @Flag(help: "Let POST /cli/v1/login and /web/v1/login sign anybody in without a password: local use only (or SHOP_DEV_LOGIN=1).")
        var devLogin = false

        func run() async throws {
            let environment = ProcessInfo.processInfo.environment
            guard let secret = environment["SHOP_TOKEN_SECRET"], secret.utf8.count >= 32 else {
                throw ValidationError("SHOP_TOKEN_SECRET must be set to at least 32 bytes (bin/db env sets one)")
            }
            let serviceSecret = try ShopServer.serviceSecret()
            func instances(_ option: String?, _ service: String, _ fallback: Int) throws -> [String] {
                let text = option ?? environment["SHOP_\(service)_URLS"] ?? environment["SHOP_\(service)_URL"] ?? "http://127.0.0.1:\(fallback)"
                let urls = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
                for url in urls {
                    guard let parsed = URL(string: url), parsed.scheme == "http" || parsed.scheme == "https", parsed.host != nil else {
                        throw ValidationError("'\(url)' is not an http(s) URL of a \(service.lowercased()) instance")
                    }
                }
                guard !urls.isEmpty else { throw ValidationError("no \(service.lowercased()) instance given") }
                return urls
            }
            let port = try self.port ?? environment["SHOP_BFF_PORT"].map {
                guard let port = Int($0) else { throw ValidationError("SHOP_BFF_PORT '\($0)' is not a port number") }
                return port
            } ?? 8080
            let rate = self.rate ?? environment["SHOP_BFF_RATE"].flatMap(Double.init) ?? 20
            let burst = self.burst ?? environment["SHOP_BFF_BURST"].flatMap(Int.init) ?? 40
            let cacheMs = self.cacheMs ?? environment["SHOP_BFF_CACHE_MS"].flatMap(Int.init) ?? 1000
            guard (0...60_000).contains(cacheMs) else { throw ValidationError("the catalog page lifetime is 0 to 60000 ms") }
            guard rate > 0, burst >= 1 else { throw ValidationError("the rate must be above 0 and the burst at least 1") }
            let logger = makeLogger("bff", instance: "\(host):\(port)")
            try await BFFService.application(
                .init(host: host, port: port, tokenSecret: Data(secret.utf8), serviceSecret: serviceSecret, catalog: try instances(catalogURLs, "CATALOG", 8081),
                      ordering: try instances(orderingURLs, "ORDERING", 8082), billing: try instances(billingURLs, "BILLING", 8083),
                      requestsPerSecond: rate, burst: burst, developmentLogin: devLogin || environment["SHOP_DEV_LOGIN"] == "1",
                      catalogPageLifetime: .milliseconds(cacheMs)),
                logger: logger
            ).serve(logger: logger)
        }
    }
}
