import AsyncHTTPClient
import Catalog
import EventStore
import Foundation
import GRDB
import Identity
import ProductListing
import Projections
import SharedKernel
import Synchronization
import NIOCore
import NIOFoundationCompat
import TestSupport
import Testing

/// The built `shop-server`, beside the test bundle in the build folder.
func shopServerBinary() throws -> URL {
    let binary = TestDatabase.repositoryRoot.appendingPathComponent(".build/debug/shop-server")
    guard FileManager.default.isExecutableFile(atPath: binary.path) else {
        throw TestSetupError("\(binary.path) is missing: build first (bin/test runs swift test, which builds it)")
    }
    return binary
}

/// The next port `freePort()` considers: handed out in turn from a random start, so that no two tests of a run
/// get the same one (random picks collide: about one run in fifty, with the ports a run holds at once).
private let nextPort = Mutex(Int.random(in: 20_000...29_999))

/// A port for a service process that a test starts: never the same twice in a run, outside the kernel's range
/// for outgoing connections (32768–60999 on Linux, so that no connection's own end takes it before the service
/// binds it), and free now.
func freePort() -> Int {
    while true {
        let port = nextPort.withLock { next in
            defer { next = next == 29_999 ? 20_000 : next + 1 }
            return next
        }
        if canBind(port) { return port }
    }
}

/// Whether 127.0.0.1:`port` can be bound now (nothing listens on it or holds it).
private func canBind(_ port: Int) -> Bool {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { return false }
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
    }
}

/// `GET http://127.0.0.1:port/path`, or nil while nothing answers.
func get(_ port: Int, _ path: String) async -> [String: Any]? {
    var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
    if let authorization = try? await ServicePorts.authorization(port) { request.headers.add(name: "Authorization", value: authorization) }
    guard let response = try? await HTTPClient.shared.execute(request, timeout: .seconds(5)),
        let body = try? await response.body.collect(upTo: 1 << 20)
    else { return nil }
    return try? JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any]
}

/// Starts `shop-server catalog` on the database, keeping its views in `views`.
func startCatalog(_ database: DatabaseURL, views: URL, port: Int) throws -> Process {
    try startService("catalog", database, views: views, port: port)
}

/// Which service a test started on which port, so that requests to it carry a service token for it.
enum ServicePorts {
    private static let services = Mutex<[Int: String]>([:])

    static func record(_ port: Int, _ service: String) { services.withLock { $0[port] = service } }

    /// A service token for the service on `port`, as the BFF sends it; `nil` for a port no test service holds.
    static func authorization(_ port: Int) async throws -> String? {
        guard let service = services.withLock({ $0[port] }) else { return nil }
        return try await ServiceIdentity(name: "bff", secret: TestSecrets.service).authorization(to: service)
    }
}

/// Starts `shop-server <service>` on the database, keeping its views in `views`, with `environment` added.
func startService(_ service: String, _ database: DatabaseURL, views: URL, port: Int, environment: [String: String] = [:],
                  arguments: [String] = [], errors: Pipe? = nil) throws -> Process {
    let process = Process()
    process.executableURL = try shopServerBinary()
    process.arguments = [service, "--port", "\(port)", "--views", views.path, "--migrations", TestDatabase.migrations.path] + arguments
    if let errors { process.standardError = errors }
    process.environment = ProcessInfo.processInfo.environment.merging(
        ["SHOP_\(service.uppercased())_DATABASE_URL": "postgres://\(database.username):\(database.password ?? "")@\(database.host):\(database.port)/\(database.database)?sslmode=disable",
         "SHOP_LOG_LEVEL": "error", "SHOP_SERVICE_SECRET": TestSecrets.serviceText].merging(environment) { $1 }) { $1 }
    ServicePorts.record(port, service)
    process.standardOutput = FileHandle.nullDevice
    try process.run()
    return process
}

/// Starts `shop-server payment-provider`, keeping what it does in `file`.
func startProvider(port: Int, file: URL) throws -> Process {
    let process = Process()
    process.executableURL = try shopServerBinary()
    process.arguments = ["payment-provider", "--port", "\(port)", "--file", file.path]
    process.environment = ProcessInfo.processInfo.environment.merging(["SHOP_LOG_LEVEL": "error"]) { $1 }
    process.standardOutput = FileHandle.nullDevice
    try process.run()
    return process
}

/// The view's position as the service reports it; nil while it does not answer.
func viewPosition(_ port: Int) async -> Position? {
    guard let views = await get(port, "/admin/views")?["views"] as? [[String: Any]],
        let text = views.first?["position"] as? String
    else { return nil }
    return Position(text)
}

@Suite("Crash safety, with real processes")
struct ProjectorCrashTests {
    @Test(.timeLimit(.minutes(3)))
    func aProjectorKilledMidBatchLeavesAConsistentViewAndResumesWithoutDoubleApplying() async throws {
        let database = try await TestDatabase.create()
        let views = scratchViews()
        // Thousands of events for the listing: products, and stock moving on each.
        let head = try await withRunningStore(database) { store -> Position in
            for batch in 0..<40 {
                var events: [(StreamName, [NewEvent])] = []
                for index in 0..<25 {
                    let sku = try SKU("P-\(batch)-\(index)")
                    let added = Product.Event.added(.init(sku: sku, name: "Product \(batch) \(index)", description: "Number \(index)",
                                                          price: try Money(minorUnits: Int64(100 + index), currency: .eur)))
                    events.append((try StreamName(category: "product", id: sku.rawValue), [try NewEvent(added, codec: CatalogEvents.product)]))
                    let stock = (1...5).map { Stock.Event.received(.init(sku: sku, quantity: $0)) }
                    events.append((try StreamName(category: "stock", id: sku.rawValue), try stock.map { try NewEvent($0, codec: CatalogEvents.stock) }))
                }
                for (stream, new) in events { try await store.append(new, to: stream, expectedVersion: .any) }
            }
            return try await store.lastCommittedPosition()
        }

        // Start the service, let its projector get some way, and kill it without warning.
        let port = freePort()
        let first = try startCatalog(database, views: views, port: port)
        var killedAt: Position?
        while killedAt == nil {
            if let position = await viewPosition(port), position > .start {
                kill(first.processIdentifier, SIGKILL)
                killedAt = position
            }
            #expect(first.isRunning || killedAt != nil, "the service died on its own")
            if !first.isRunning && killedAt == nil { return }
            try await Task.sleep(for: .milliseconds(2))  // polling another process, which cannot notify us
        }
        await exited(first)
        #expect(first.terminationReason == .uncaughtSignal)
        #expect(try #require(killedAt) < head, "killed before it had caught up, so mid-way")

        // Restart on the same views: it resumes from its checkpoint and catches up.
        let secondPort = freePort()
        let second = try startCatalog(database, views: views, port: secondPort)
        defer { if second.isRunning { second.terminate() } }
        while (await viewPosition(secondPort)).map({ $0 < head }) ?? true {
            #expect(second.isRunning, "the restarted service died")
            if !second.isRunning { return }
            try await Task.sleep(for: .milliseconds(20))  // polling another process, which cannot notify us
        }
        second.terminate()
        await exited(second)

        // The crashed-and-resumed view equals one built from scratch: nothing applied twice, nothing lost.
        try await withRunningStore(database) { store in
            let resumed = try Projector(ProductListing(), store: store, directory: views, logger: TestDatabase.logger)
            #expect(resumed.position == head)
            let fresh = try Projector(ProductListing(), store: store, directory: scratchViews(), logger: TestDatabase.logger)
            await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await fresh.run() }
                defer { group.cancelAll() }
                #expect(await fresh.wait(until: head, timeout: .seconds(60)))
            }
            #expect(try await resumed.contentChecksum() == (try await fresh.contentChecksum()))
            let onHand = try await resumed.read { try Int.fetchOne($0, sql: "SELECT sum(on_hand) FROM products") }
            #expect(onHand == 1000 * 15)
        }
    }
}
