import ArgumentParser
import AsyncHTTPClient
import Foundation
import Identity
import NIOCore

/// Loads the demo catalog through the Catalog service's API. Every request has an idempotency key made from
/// the SKU, so running it again changes nothing. It calls as `shop-admin`, with a service token signed with
/// `$SHOP_SERVICE_SECRET`.
struct Seed: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Load the demo catalog (products and stock) through the Catalog service, idempotently.")

    @Option(help: "Where the Catalog service runs (default: $SHOP_CATALOG_URL, else http://127.0.0.1:8081).")
    var catalogURL: String?

    func run() async throws {
        let base = (catalogURL ?? ProcessInfo.processInfo.environment["SHOP_CATALOG_URL"] ?? "http://127.0.0.1:8081")
            .trimmingCharacters(in: CharacterSet(charactersIn: "/"))
        guard let secret = ProcessInfo.processInfo.environment["SHOP_SERVICE_SECRET"], secret.utf8.count >= 32 else {
            throw Failure("SHOP_SERVICE_SECRET is not set to at least 32 bytes: eval \"$(bin/db env)\" sets it")
        }
        let identity = try await ServiceIdentity(name: "shop-admin", secret: Data(secret.utf8))
        var added = 0, present = 0
        for product in DemoCatalog.products {
            let body = #"{"sku":"\#(product.sku)","name":"\#(product.name)","description":"\#(product.description)","price":{"amount":\#(product.cents),"currency":"EUR"}}"#
            let (status, reply, replayed) = try await post(base, "/products", body, identity, key: "seed-product-\(product.sku)")
            switch status {
            case 201 where !replayed: added += 1
            case 201: present += 1
            case 422 where reply.contains("product-already-exists"): present += 1
            default: throw Failure("adding \(product.sku) failed: \(status) \(reply)")
            }
            let (stockStatus, stockReply, _) = try await post(base, "/products/\(product.sku)/stock", #"{"quantity":\#(product.stock)}"#, identity,
                                                           key: "seed-stock-\(product.sku)")
            guard stockStatus == 200 else { throw Failure("receiving stock of \(product.sku) failed: \(stockStatus) \(stockReply)") }
        }
        print("demo catalog: \(DemoCatalog.products.count) products (\(added) added, \(present) already there)")
    }

    /// The status, the body, and whether it was a replay of an earlier answer.
    private func post(_ base: String, _ path: String, _ body: String, _ identity: ServiceIdentity, key: String) async throws -> (Int, String, Bool) {
        var request = HTTPClientRequest(url: base + path)
        request.method = .POST
        request.headers.add(name: "Authorization", value: try await identity.authorization(to: "catalog"))
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "Idempotency-Key", value: key)
        request.body = .bytes(ByteBuffer(string: body))
        do {
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
            let reply = try await response.body.collect(upTo: 1 << 20)
            return (Int(response.status.code), String(buffer: reply), response.headers.first(name: "Idempotent-Replayed") == "true")
        } catch {
            throw Failure("the Catalog service at \(base) does not answer (\(error)): is it running? (shop-server catalog starts it)")
        }
    }
}

enum DemoCatalog {
    struct Product { let sku: String, name: String, description: String, cents: Int, stock: Int }

    static let products: [Product] = [
        .init(sku: "MUG-001", name: "Swift mug", description: "A white ceramic mug with the Swift bird, 350 ml.", cents: 1250, stock: 40),
        .init(sku: "MUG-002", name: "Big mug", description: "A mug for long debugging sessions, 500 ml.", cents: 1590, stock: 25),
        .init(sku: "MUG-003", name: "Espresso cup", description: "Small, strong, to the point.", cents: 890, stock: 30),
        .init(sku: "MUG-004", name: "Travel mug", description: "Insulated steel, keeps coffee warm through a long build.", cents: 2490, stock: 15),
        .init(sku: "TEE-001", name: "Event sourcing tee", description: "Black cotton tee: 'State is a left fold of events'.", cents: 2200, stock: 30),
        .init(sku: "TEE-002", name: "CQRS tee", description: "Grey tee with the command and query sides drawn apart.", cents: 2200, stock: 30),
        .init(sku: "TEE-003", name: "Saga tee", description: "White tee with the order fulfilment saga as a diagram.", cents: 2400, stock: 20),
        .init(sku: "TEE-004", name: "Idempotent tee", description: "Wear it twice, it is still one tee.", cents: 1990, stock: 20),
        .init(sku: "HOOD-001", name: "Bounded context hoodie", description: "Warm, with a clearly drawn boundary.", cents: 4900, stock: 12),
        .init(sku: "HOOD-002", name: "Eventual consistency hoodie", description: "Arrives consistent. Eventually.", cents: 4900, stock: 12),
        .init(sku: "CAP-001", name: "Circuit breaker cap", description: "Opens after five failures, closes after a probe.", cents: 1800, stock: 25),
        .init(sku: "SOCK-001", name: "Bulkhead socks", description: "Two compartments, one per foot.", cents: 990, stock: 50),
        .init(sku: "STK-001", name: "Sticker pack", description: "Ten vinyl stickers: decider, evolve, projection and friends.", cents: 600, stock: 200),
        .init(sku: "STK-002", name: "Swift bird sticker", description: "One large die-cut sticker.", cents: 250, stock: 300),
        .init(sku: "NOTE-001", name: "Event storming notebook", description: "Dotted pages and orange sticky notes.", cents: 1400, stock: 40),
        .init(sku: "NOTE-002", name: "Pocket notebook", description: "For commands and their rejections.", cents: 700, stock: 60),
        .init(sku: "PEN-001", name: "Ballpoint pen", description: "Writes append-only.", cents: 350, stock: 120),
        .init(sku: "POST-001", name: "Architecture poster", description: "A2 poster of the shop: BFFs, contexts, event stores.", cents: 1500, stock: 20),
        .init(sku: "POST-002", name: "Gap-free reading poster", description: "A2 poster explaining pg_snapshot_xmin.", cents: 1500, stock: 20),
        .init(sku: "BAG-001", name: "Tote bag", description: "Canvas bag with room for a laptop.", cents: 1700, stock: 35),
        .init(sku: "BOTL-001", name: "Water bottle", description: "Steel bottle, 750 ml.", cents: 2100, stock: 18),
        .init(sku: "KEY-001", name: "Mechanical keyboard", description: "Tactile switches, for typing Swift all day.", cents: 12900, stock: 6),
        .init(sku: "MOUSE-001", name: "Wireless mouse", description: "Quiet clicks.", cents: 3900, stock: 10),
        .init(sku: "PAD-001", name: "Desk mat", description: "Large mat with the Swift Shop architecture printed on it.", cents: 2900, stock: 14),
        .init(sku: "LAMP-001", name: "Desk lamp", description: "Warm light for late deployments.", cents: 4500, stock: 8),
        .init(sku: "BOOK-001", name: "Event sourcing handbook", description: "Deciders, projections and sagas, with examples in Swift.", cents: 3900, stock: 15),
        .init(sku: "BOOK-002", name: "Server-side Swift cookbook", description: "Recipes for Hummingbird, PostgresNIO and friends.", cents: 3500, stock: 15),
        .init(sku: "PIN-001", name: "Enamel pin", description: "A tiny Swift bird for your jacket.", cents: 800, stock: 80),
        .init(sku: "LAN-001", name: "Lanyard", description: "For your conference badge.", cents: 500, stock: 100),
        .init(sku: "GIFT-001", name: "Gift card", description: "Lets someone else choose.", cents: 2500, stock: 1000),
    ]
}
