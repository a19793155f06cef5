import ArgumentParser
import AsyncHTTPClient
import BillingService
import CatalogService
import EventStore
import Foundation
import GRDB
import Identity
import Logging
import NIOCore
import NIOHTTP1
import NIOFoundationCompat
import OrderingService
import PostgresNIO
import ServiceLifecycle
import Synchronization

/// Checkouts end to end through the three services (each on its own database and port, over real HTTP, in
/// this process), from the checkout request to the confirmed order, at growing concurrency; against the
/// single-commit latency of the same PostgreSQL, measured in the same run.
struct Checkout: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Order fulfilment sagas end to end against the cost of their commits.")

    @Option(help: "Catalog's scratch database (bin/bench makes one).") var catalogDatabaseURL: String
    @Option(help: "Ordering's scratch database.") var orderingDatabaseURL: String
    @Option(help: "Billing's scratch database.") var billingDatabaseURL: String

    @Option(help: "Checkouts per concurrency level, per concurrent customer.")
    var perCustomer: Int = 25

    @Option(parsing: .upToNextOption, help: "The concurrency levels to measure.")
    var concurrency: [Int] = [1, 2, 4, 8]

    @Option(help: "Milliseconds each customer waits after an order is confirmed before the next (0: at once).")
    var thinkTime: Int = 0

    func validate() throws {
        guard perCustomer >= 1 else { throw ValidationError("--per-customer is at least 1") }
        guard !concurrency.isEmpty, concurrency.allSatisfy({ $0 >= 1 }) else { throw ValidationError("--concurrency takes levels of at least 1") }
        guard thinkTime >= 0 else { throw ValidationError("--think-time is a number of milliseconds, 0 or more") }
    }

    func run() async throws {
        var logger = Logger(label: "shop-bench")
        logger.logLevel = .critical
        let urls = try [("catalog", catalogDatabaseURL), ("ordering", orderingDatabaseURL), ("billing", billingDatabaseURL)].map { name, text in
            let url = try DatabaseURL(text)
            return (name, url)
        }
        for (name, url) in urls {
            try await Migrator(directory: try Migrator.defaultDirectory(), folders: ["eventstore", name]).migrate(url, logger: logger)
        }
        let views = FileManager.default.temporaryDirectory.appendingPathComponent("bench-checkout-\(UUID())")
        defer { try? FileManager.default.removeItem(at: views) }
        let shop = try await BenchServices.make(databases: urls.map(\.1), views: views, logger: logger)
        let base = shop.base, serviceSecret = BenchServices.serviceSecret
        let services = ServiceGroup(configuration: .init(services: shop.services, logger: logger))
        let levels = concurrency, perCustomer = perCustomer
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await services.run() }
            defer { Task { await services.triggerGracefulShutdown() } }
            let client = Client(base: base, identity: try await ServiceIdentity(name: "shop-bench", secret: serviceSecret))
            try await client.waitUntilUp()
            try await client.expect(201, .POST, base.catalog + "/products", #"{"sku":"BENCH-1","name":"Bench mug","price":{"amount":1250,"currency":"EUR"}}"#)
            try await client.expect(200, .POST, base.catalog + "/products/BENCH-1/stock", #"{"quantity":1000000}"#)
            try await client.waitForCopy()

            // The cost of one durable commit on this PostgreSQL, and how many one saga makes; and what a round trip
            // without a commit costs, to PostgreSQL and to a service, which a saga's path is made of as well.
            let commit = try await Self.singleCommitLatency(urls[1].1, logger: logger)
            let sqliteCommit = try await Self.sqliteCommitLatency(in: views)
            let trips = try await Self.roundTrips(urls[1].1, service: base.catalog + "/health/live", logger: logger)
            let hops = try await Self.hops(client)
            let counted = try await Self.transactionsPerSaga(client, probe: urls[1].1, databases: urls.map(\.1), logger: logger)
            let commits = counted.commitsToConfirmed
            // The path to a confirmed order, counted from the code (docs/benchmarks.md lists them) and priced with the costs
            // measured above: its durable commits (counted just above), its other sequential round trips to PostgreSQL
            // (reads, the saga's claim), its HTTP exchanges (the checkout, the saga's calls to Catalog and Billing,
            // Billing's to the payment provider), and the provider's own durable write (SQLite).
            let roundTripsToConfirmed = 6.0, exchangesToConfirmed = 5.0
            let floor = commits * commit.p50 + max(0, roundTripsToConfirmed - commits) * trips.database + exchangesToConfirmed * trips.http
                + sqliteCommit
            say("""
                PostgreSQL single-row INSERT+COMMIT, one connection: \(format(commit.p50 * 1000, 2)) ms p50 (\(format(1 / commit.p50, 0))/s); \
                SQLite's (WAL, synchronous FULL, as the payment provider writes): \(format(sqliteCommit * 1000, 2)) ms p50
                Round trips without a commit: PostgreSQL through a connection pool (SELECT 1) \(format(trips.database * 1000, 2)) ms p50, \
                HTTP to a service (GET /health/live, kept alive) \(format(trips.http * 1000, 2)) ms p50
                The saga's calls made directly, one at a time (p50): Catalog reserve \(ms(hops.reserve)) ms, Billing authorise \(ms(hops.authorise)) ms \
                (through the payment provider), Ordering's order read \(ms(hops.read)) ms
                Transactions of one saga (ids assigned while sagas ran one at a time; wake-up NOTIFYs write nothing, so wait for no flush):
                  checkout → confirmed: \(format(counted.toConfirmed.transactions, 1)), of which \(format(counted.toConfirmed.announcements, 1)) \
                NOTIFYs: \(format(counted.commitsToConfirmed, 1)) durable commits
                  checkout → completed: \(format(counted.toCompleted.transactions, 1)), of which \(format(counted.toCompleted.announcements, 1)) \
                NOTIFYs: \(format(counted.commitsToCompleted, 1)) durable commits
                \(counted.elsewhere == 0 ? "No other database of the cluster committed anything meanwhile: the ids were the saga's." : "NOTE: other databases of the cluster committed \(counted.elsewhere) transactions meanwhile (read-only ones count too): whatever of them wrote took transaction ids, which the counts above include.")
                Floor of checkout → confirmed: \(format(commits, 1)) commits × \(ms(commit.p50)) ms + \(format(max(0, roundTripsToConfirmed - commits), 1)) \
                other round trips × \(ms(trips.database)) ms + \(format(exchangesToConfirmed, 0)) HTTP exchanges × \(ms(trips.http)) ms \
                + the provider's commit \(ms(sqliteCommit)) ms = \(ms(floor)) ms

                """)
            say("concurrency  orders/s  p50 ms  p99 ms  (checkout → confirmed\(thinkTime > 0 ? "; each customer thinks \(thinkTime) ms between orders" : ""))")
            var results: [(Int, Double, Double)] = []
            for level in levels {
                let (rate, latencies) = try await client.run(customers: level, checkoutsEach: perCustomer, tag: "c\(level)",
                                                             thinking: .milliseconds(thinkTime))
                let p50 = percentile(latencies, 0.5), p99 = percentile(latencies, 0.99)
                results.append((level, rate, p50))
                say("\(String(level).padding(toLength: 13, withPad: " ", startingAt: 0))\(format(rate, 1).padding(toLength: 10, withPad: " ", startingAt: 0))\(ms(p50).padding(toLength: 8, withPad: " ", startingAt: 0))\(ms(p99))")
            }
            if let single = results.first(where: { $0.0 == 1 }) {
                say("""

                    p50 at concurrency 1: \(ms(single.2)) ms, \(format(single.2 / floor, 2)) × the floor (goal ≤ 1.3: \(single.2 <= 1.3 * floor ? "met" : "NOT MET"))
                    """)
                let cores = ProcessInfo.processInfo.activeProcessorCount
                let upToCores = results.filter { $0.0 <= max(cores, 2) }
                let grows = zip(upToCores, upToCores.dropFirst()).allSatisfy { $1.1 > $0.1 }
                let verdict = upToCores.count < 2 ? "one level up to the cores: nothing to compare" : grows ? "grows" : "DOES NOT GROW"
                say("Throughput from 1 to \(upToCores.last?.0 ?? 1) concurrent customers (\(cores) cores): "
                      + upToCores.map { format($0.1, 1) }.joined(separator: " → ") + " orders/s (\(verdict))")
            }
        }
    }

    /// Sequential `SELECT 1`s through a pool of connections to `url`, and sequential `GET`s of `service` (with the
    /// shared HTTP client, which keeps its connections alive): the p50 of each, in seconds.
    static func roundTrips(_ url: DatabaseURL, service: String, logger: Logger) async throws -> (database: Double, http: Double) {
        func p50(_ body: () async throws -> Void) async throws -> Double {
            var seconds: [Double] = []
            for _ in 0..<300 {
                let started = ContinuousClock.now
                try await body()
                seconds.append((ContinuousClock.now - started).seconds)
            }
            return percentile(seconds, 0.5)
        }
        let pool = PostgresClient(configuration: .init(host: url.host, port: url.port, username: url.username, password: url.password,
                                                       database: url.database, tls: .disable), backgroundLogger: logger)
        let database = try await withThrowingTaskGroup(of: Double?.self) { group in
            group.addTask { await pool.run(); return nil }
            defer { group.cancelAll() }
            return try await p50 { for try await _ in try await pool.query("SELECT 1", logger: logger) {} }
        }
        let http = try await p50 {
            let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: service), timeout: .seconds(5))
            _ = try await response.body.collect(upTo: 1 << 16)
        }
        return (database, http)
    }

    /// The saga's two calls on the way to a confirmed order, made by the client one at a time for orders of their
    /// own, and a read of an order: the p50 of each, in seconds. What each hop costs its service, without the saga.
    static func hops(_ client: Client) async throws -> (reserve: Double, authorise: Double, read: Double) {
        var reserve: [Double] = [], authorise: [Double] = [], read: [Double] = []
        for index in 0..<100 {
            let order = "hop-\(index)"
            var started = ContinuousClock.now
            try await client.expect(201, .POST, client.base.catalog + "/reservations",
                                    #"{"order":"\#(order)","lines":[{"sku":"BENCH-1","quantity":1}]}"#)
            reserve.append((ContinuousClock.now - started).seconds)
            started = ContinuousClock.now
            try await client.expect(201, .POST, client.base.billing + "/payments/\(order)/authorise",
                                    #"{"amount":{"amount":1250,"currency":"EUR"},"card":"4242424242424242"}"#)
            authorise.append((ContinuousClock.now - started).seconds)
        }
        try await client.expect(200, .POST, client.base.ordering + "/carts/hop/items", #"{"sku":"BENCH-1","quantity":1}"#)
        try await client.expect(201, .POST, client.base.ordering + "/carts/hop/checkout", #"{"order":"hop-read","card":"4242424242424242"}"#)
        for _ in 0..<100 {
            let started = ContinuousClock.now
            try await client.expect(200, .GET, client.base.ordering + "/orders/hop-read")
            read.append((ContinuousClock.now - started).seconds)
        }
        return (percentile(reserve, 0.5), percentile(authorise, 0.5), percentile(read, 0.5))
    }

    /// Sequential single-row INSERTs into a SQLite file in `directory`, each its own transaction, as the payment
    /// provider simulator writes (WAL, synchronous FULL: a flush per commit): the p50, in seconds.
    static func sqliteCommitLatency(in directory: URL) async throws -> Double {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var configuration = Configuration()
        configuration.prepareDatabase { try $0.execute(sql: "PRAGMA synchronous = FULL") }
        let database = try DatabasePool(path: directory.appendingPathComponent("commit.sqlite").path, configuration: configuration)
        try await database.write { try $0.execute(sql: "CREATE TABLE IF NOT EXISTS bench_commit (id INTEGER PRIMARY KEY, value INTEGER NOT NULL)") }
        var seconds: [Double] = []
        for value in 0..<300 {
            let started = ContinuousClock.now
            try await database.write { try $0.execute(sql: "INSERT INTO bench_commit (value) VALUES (?)", arguments: [value]) }
            seconds.append((ContinuousClock.now - started).seconds)
        }
        return percentile(seconds, 0.5)
    }

    /// Sequential single-row INSERTs, each its own transaction, on `url`.
    static func singleCommitLatency(_ url: DatabaseURL, logger: Logger) async throws -> (p50: Double, mean: Double) {
        try await withConnection(url, logger: logger) { connection in
            try await connection.run("CREATE TABLE IF NOT EXISTS bench_commit (id bigserial PRIMARY KEY, value int NOT NULL)", logger: logger)
            var seconds: [Double] = []
            for value in 0..<300 {
                let started = ContinuousClock.now
                try await connection.run("INSERT INTO bench_commit (value) VALUES (\(Int32(value)))", logger: logger)
                seconds.append((ContinuousClock.now - started).seconds)
            }
            return (percentile(seconds, 0.5), seconds.reduce(0, +) / Double(seconds.count))
        }
    }

    /// Transactions that were given an id (ids are assigned cluster-wide, and the three databases share the
    /// cluster) from a saga's checkout until it is completed, sagas run one at a time, without the probe's own; and
    /// how many of them were the event stores' wake-up NOTIFYs, counted by listening in each of `databases`. A
    /// NOTIFY's transaction is given an id but writes nothing to the WAL, so its commit waits for no flush: it is
    /// not a durable commit. The cart is filled before each window opens. Means per saga.
    static func transactionsPerSaga(
        _ client: Client, probe url: DatabaseURL, databases: [DatabaseURL], logger: Logger
    ) async throws -> Counted {
        let heard = Tally(), listening = Tally(), failed = Tally()
        return try await withThrowingTaskGroup(of: Void.self) { listeners in
            for (index, database) in databases.enumerated() {
                let started = AsyncStream.makeStream(of: Void.self)
                listeners.addTask {
                    defer { started.continuation.finish() }
                    do {
                        try await withConnection(database, id: 10 + index, logger: logger) { connection in
                            try await connection.listen(on: EventStore.announcementChannel) { notifications in
                                listening.count.add(1, ordering: .relaxed)
                                started.continuation.finish()
                                for try await _ in notifications { heard.count.add(1, ordering: .relaxed) }
                            }
                        }
                    } catch {
                        if !Task.isCancelled { failed.count.add(1, ordering: .relaxed) }
                    }
                }
                for await _ in started.stream {}
            }
            defer { listeners.cancelAll() }
            let counted = try await transactions(client, probe: url, heard: heard, logger: logger)
            // A listener that was not there all along would have missed NOTIFYs, and so counted them as durable commits.
            guard listening.count.load(ordering: .relaxed) == databases.count, failed.count.load(ordering: .relaxed) == 0 else {
                throw BenchError("could not listen for the wake-up NOTIFYs in every database while counting commits")
            }
            return counted
        }
    }

    /// Per saga (means): transactions given an id and wake-up NOTIFYs among them, from the checkout to the order's
    /// confirmation and to the saga's completion; and the transactions other databases of the cluster committed
    /// meanwhile (anything but zero means another workload shares the cluster, and the counts are not the saga's).
    struct Counted {
        var toConfirmed: (transactions: Double, announcements: Double)
        var toCompleted: (transactions: Double, announcements: Double)
        var elsewhere: Int
        var commitsToConfirmed: Double { toConfirmed.transactions - toConfirmed.announcements }
        var commitsToCompleted: Double { toCompleted.transactions - toCompleted.announcements }
    }

    private static func transactions(
        _ client: Client, probe url: DatabaseURL, heard: Tally, logger: Logger
    ) async throws -> Counted {
        try await withConnection(url, logger: logger) { connection in
            func xid() async throws -> Int64 {
                let rows = try await connection.query("SELECT pg_current_xact_id()::text::bigint", logger: logger)
                for try await value in rows.decode(Int64.self) { return value }
                return 0
            }
            // What every database of the cluster has committed so far (PostgreSQL's statistics, per database).
            func committedByDatabase() async throws -> [String: Int64] {
                var committed: [String: Int64] = [:]
                let rows = try await connection.query("SELECT datname, xact_commit FROM pg_stat_database WHERE datname IS NOT NULL", logger: logger)
                for try await (name, count) in rows.decode((String, Int64).self) { committed[name] = count }
                return committed
            }
            _ = try await client.run(customers: 1, checkoutsEach: 2, tag: "warm")
            let sagas = 10
            var toConfirmed: (Int64, Int) = (0, 0), toCompleted: (Int64, Int) = (0, 0)
            /// When the client sent the checkout, had its answer, and had the confirmed order.
            var clientMarks: [(sent: Date, answered: Date, confirmed: Date)] = []
            try await Task.sleep(for: .milliseconds(1200))  // statistics are flushed at most once a second
            let statisticsBefore = try await committedByDatabase()
            for index in 0..<sagas {
                let cart = client.base.ordering + "/carts/count"
                try await client.expect(200, .POST, cart + "/items", #"{"sku":"BENCH-1","quantity":1}"#)
                try await Task.sleep(for: .milliseconds(100))  // the cart's write and its wake-up notification are out of the window
                let before = try await xid(), heardBefore = heard.count.load(ordering: .relaxed)
                let sent = Date()
                try await client.expect(201, .POST, cart + "/checkout", #"{"order":"count-\#(index)","card":"4242424242424242"}"#)
                let answered = Date()
                // The order is confirmed: what its customer waits for. The probe's own xid() takes one id each time.
                let confirmed = try await client.send(.GET, client.base.ordering + "/orders/count-\(index)?wait=30")
                clientMarks.append((sent, answered, Date()))
                guard confirmed.body["status"] as? String == "confirmed" else { throw BenchError("order count-\(index) ended \(confirmed.body)") }
                let atConfirmed = try await xid(), heardAtConfirmed = heard.count.load(ordering: .relaxed)
                toConfirmed.0 += atConfirmed - before - 1
                toConfirmed.1 += heardAtConfirmed - heardBefore
                while (try await client.send(.GET, client.base.ordering + "/admin/sagas/count-\(index)")).body["status"] as? String != "completed" {
                    try await Task.sleep(for: .milliseconds(5))
                }
                try await Task.sleep(for: .milliseconds(100))  // the last wake-up notifications are in
                toCompleted.0 += try await xid() - before - 2
                toCompleted.1 += heard.count.load(ordering: .relaxed) - heardBefore
            }
            try await Task.sleep(for: .milliseconds(1200))
            let statisticsAfter = try await committedByDatabase()
            let ours: Set<String> = ["catalog", "ordering", "billing"]
            let elsewhere = statisticsAfter.filter { !ours.contains($0.key) }.reduce(Int64(0)) { $0 + $1.value - (statisticsBefore[$1.key] ?? 0) }
            // Where a saga's time goes: from the checkout's commit to each step's start and end (mean of the sagas above).
            var marks: [String: [Double]] = [:]
            for index in 0..<sagas {
                let saga = try await client.send(.GET, client.base.ordering + "/admin/sagas/count-\(index)").body
                guard let started = instant(saga["startedAt"]), let timeline = saga["timeline"] as? [[String: Any]] else { continue }
                let client = clientMarks[index]
                marks["checkout sent", default: []].append(client.sent.timeIntervalSince1970 - started)
                marks["checkout answered", default: []].append(client.answered.timeIntervalSince1970 - started)
                marks["confirmed order answered", default: []].append(client.confirmed.timeIntervalSince1970 - started)
                for entry in timeline {
                    guard let step = entry["step"] as? String, let from = instant(entry["startedAt"]), let to = instant(entry["finishedAt"]) else { continue }
                    marks["\(step) starts", default: []].append(from - started)
                    marks["\(step) answered", default: []].append(to - started)
                }
            }
            let order = ["checkout sent", "checkout answered"]
                + ["reserve-stock", "authorise-payment"].flatMap { ["\($0) starts", "\($0) answered"] } + ["confirmed order answered"]
                + ["commit-stock", "capture-payment"].flatMap { ["\($0) starts", "\($0) answered"] }
            say("Where one saga's time goes, from its instance's start in the checkout's statement, on one clock (ms, mean of \(sagas)): "
                + order.compactMap { key in marks[key].map { "\(key) \(ms($0.reduce(0, +) / Double($0.count)))" } }.joined(separator: ", "))
            let n = Double(sagas)
            return Counted(toConfirmed: (Double(toConfirmed.0) / n, Double(toConfirmed.1) / n),
                           toCompleted: (Double(toCompleted.0) / n, Double(toCompleted.1) / n), elsewhere: Int(elsewhere))
        }
    }

    static func withConnection<T: Sendable>(_ url: DatabaseURL, id: Int = 1, logger: Logger, _ body: (PostgresConnection) async throws -> T) async throws -> T {
        let connection = try await PostgresConnection.connect(
            configuration: .init(host: url.host, port: url.port, username: url.username, password: url.password, database: url.database, tls: .disable),
            id: id, logger: logger)
        do {
            let result = try await body(connection)
            try await connection.close()
            return result
        } catch {
            try? await connection.close()
            throw error
        }
    }
}

/// The benchmark's HTTP client of the three services.
struct Client: Sendable {
    let base: (catalog: String, ordering: String, billing: String)
    /// Signs its calls' service tokens.
    let identity: ServiceIdentity

    func send(_ method: HTTPMethod, _ url: String, _ json: String? = nil) async throws -> (status: Int, body: [String: Any]) {
        var request = HTTPClientRequest(url: url)
        request.method = method
        let audience = url.hasPrefix(base.catalog) ? "catalog" : url.hasPrefix(base.ordering) ? "ordering" : "billing"
        request.headers.add(name: "Authorization", value: try await identity.authorization(to: audience))
        request.headers.add(name: "Idempotency-Key", value: UUID().uuidString)
        request.headers.add(name: "Content-Type", value: "application/json")
        if let json { request.body = .bytes(ByteBuffer(string: json)) }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
        let body = try await response.body.collect(upTo: 1 << 20)
        return (Int(response.status.code), (try? JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any]) ?? [:])
    }

    func expect(_ status: Int, _ method: HTTPMethod, _ url: String, _ json: String? = nil) async throws {
        let answer = try await send(method, url, json)
        guard answer.status == status else { throw BenchError("\(method) \(url) answered \(answer.status): \(answer.body)") }
    }

    func waitUntilUp() async throws {
        for url in [base.catalog, base.ordering, base.billing] {
            while (try? await send(.GET, url + "/health/ready"))?.status != 200 { try await Task.sleep(for: .milliseconds(20)) }
        }
    }

    /// Until Ordering's copy of the catalog knows the product.
    func waitForCopy() async throws {
        while try await send(.POST, base.ordering + "/carts/warmup/items", #"{"sku":"BENCH-1","quantity":1}"#).status != 200 {
            try await Task.sleep(for: .milliseconds(20))
        }
        try await expect(200, .DELETE, base.ordering + "/carts/warmup")
    }

    /// `customers` customers each check out `checkoutsEach` orders one after another (waiting `thinking` after
    /// each); the rate, and each order's seconds from checkout to confirmed.
    func run(customers: Int, checkoutsEach: Int, tag: String, thinking: Duration = .zero) async throws -> (rate: Double, latencies: [Double]) {
        let started = ContinuousClock.now
        let latencies = try await withThrowingTaskGroup(of: [Double].self) { group in
            for customer in 0..<customers {
                group.addTask {
                    var latencies: [Double] = []
                    for index in 0..<checkoutsEach {
                        let cart = base.ordering + "/carts/\(tag)-\(customer)"
                        try await expect(200, .POST, cart + "/items", #"{"sku":"BENCH-1","quantity":1}"#)
                        let order = "\(tag)-\(customer)-\(index)"
                        let checkout = ContinuousClock.now
                        try await expect(201, .POST, cart + "/checkout", #"{"order":"\#(order)","card":"4242424242424242"}"#)
                        let outcome = try await send(.GET, base.ordering + "/orders/\(order)?wait=30")
                        guard outcome.body["status"] as? String == "confirmed" else { throw BenchError("order \(order) ended \(outcome.body)") }
                        latencies.append((ContinuousClock.now - checkout).seconds)
                        if thinking > .zero { try await Task.sleep(for: thinking) }
                    }
                    return latencies
                }
            }
            return try await group.reduce(into: [Double]()) { $0 += $1 }
        }
        return (Double(latencies.count) / (ContinuousClock.now - started).seconds, latencies)
    }
}

/// A count that tasks add to.
final class Tally: Sendable {
    let count = Atomic(0)
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

func percentile(_ values: [Double], _ fraction: Double) -> Double {
    let sorted = values.sorted()
    guard !sorted.isEmpty else { return 0 }
    let rank = max(0, Int((Double(sorted.count) * fraction).rounded(.up)) - 1)
    return sorted[min(sorted.count - 1, rank)]
}

func ms(_ seconds: Double) -> String { format(seconds * 1000, 1) }

/// A port nothing listens on now (the kernel's pick).
func freePort() -> Int {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(descriptor) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, length) == 0 && getsockname(descriptor, $0, &length) == 0 }
    }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Prints a line at once, also into a pipe (`print` holds it back in a buffer until exit).
func say(_ text: String) {
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
}

/// A date as the services write it (ISO 8601 with milliseconds), in seconds.
private func instant(_ value: Any?) -> Double? {
    let format = ISO8601DateFormatter()
    format.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    return (value as? String).flatMap { format.date(from: $0) }?.timeIntervalSince1970
}
