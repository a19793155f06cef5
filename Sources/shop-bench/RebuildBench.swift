import ArgumentParser
import EventStore
import Foundation
import GRDB
import Logging
import OrderHistory
import Ordering
import Projections
import SharedKernel
import Synchronization

/// Rebuilds the order-history view from an event store of `events` order events, against inserting the
/// equivalent rows straight through GRDB in one transaction (the baseline), in alternating rounds, and reports the
/// first rebuild's peak memory.
struct Rebuild: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Projection rebuild against direct SQLite inserts.")

    @OptionGroup var database: BenchDatabase

    @Option(help: "How many events to rebuild from (5 per order).")
    var events: Int = 200_000

    @Option(help: "Rounds (at least 3) of a rebuild and the baseline, alternating.")
    var rounds: Int = 3

    func validate() throws {
        guard rounds >= 3 else { throw ValidationError("--rounds is at least 3") }
    }

    func run() async throws {
        let (url, logger) = try await database.prepare()
        let store = EventStore(.init(database: url, maximumConnections: 12), logger: logger)
        let orders = max(1, events / 5)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await store.run() }
            defer { group.cancelAll() }
            await store.waitUntilRunning()

            print("Filling the event store with \(orders * 5) order events (\(orders) orders: placed, awaiting stock, awaiting payment, confirmed, shipped)...")
            let filling = ContinuousClock.now
            try await withThrowingTaskGroup(of: Void.self) { writers in
                for writer in 0..<8 {
                    writers.addTask {
                        for order in stride(from: writer, to: orders, by: 8) {
                            try await store.append(try Self.history(of: order).map { try NewEvent($0, codec: OrderingEvents.order) },
                                                   to: try StreamName(category: "order", id: "bench-\(order)"), expectedVersion: .noStream)
                        }
                    }
                }
                try await writers.waitForAll()
            }
            print("  filled in \(format((ContinuousClock.now - filling).seconds, 1)) s\n")

            // Rounds of a rebuild and the baseline, alternating which goes first; each round gives a ratio.
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("bench-views-\(UUID())")
            defer { try? FileManager.default.removeItem(at: directory) }
            let projector = try Projector(OrderHistory(), store: store, directory: directory, logger: logger)
            let samples = Mutex<[(fraction: Double, rss: Int)]>([])
            let baseRSS = residentKilobytes()
            var rebuildRates: [Double] = [], baselineRates: [Double] = [], ratios: [Double] = []
            var rebuilt = 0
            for round in 0..<rounds {
                var rebuildRate = 0.0, baselineRate = 0.0
                for which in round % 2 == 0 ? [0, 1] : [1, 0] {
                    if which == 0 {
                        let result = try await projector.rebuild { progress in
                            if round == 0 {
                                samples.withLock { $0.append((Double(progress.events) / Double(max(progress.total, 1)), residentKilobytes())) }
                            }
                        }
                        rebuilt = result.events
                        rebuildRate = Double(result.events) / result.elapsed.seconds
                    } else {
                        baselineRate = try await Self.baseline(orders: orders)
                    }
                }
                rebuildRates.append(rebuildRate)
                baselineRates.append(baselineRate)
                ratios.append(rebuildRate / baselineRate)
            }

            // Where a rebuild's time goes: its parts alone, one after the other (the rebuild overlaps reading and
            // decoding the next batch with writing this one).
            let parts = try await Self.readingCost(store, OrderHistory(), batchSize: 5_000)
            let memory = samples.withLock { $0 }
            let early = memory.first { $0.fraction >= 0.25 }?.rss ?? baseRSS
            let peak = memory.map(\.rss).max() ?? baseRSS
            let rate = median(rebuildRates), ratio = median(ratios)
            print("""
                \(rounds) rounds, rebuild and baseline alternating which goes first; rates are medians, the ratio min / median / max of the rounds' own.
                Rebuild of ordering-order-history from \(rebuilt) events: \(format(rate, 0)) events/s (goal ≥ 100,000: \(rate >= 100_000 ? "met" : "NOT MET"))
                Baseline, the same rows inserted directly with prepared statements in one transaction: \(format(median(baselineRates), 0)) events/s
                Ratio: \(format(ratios.min()!, 2)) / \(format(ratio, 2)) / \(format(ratios.max()!, 2)) (goal ≥ 0.6: \(ratio >= 0.6 ? "met" : "NOT MET"))
                Resident memory of the first rebuild: \(baseRSS / 1024) MiB before, \(early / 1024) MiB a quarter of the way, \(peak / 1024) MiB at its peak \
                (\(peak - early <= max(early / 5, 16 * 1024) ? "flat: the rebuild streams" : "GROWING"))
                Its parts alone, for \(parts.events) events: reading them from PostgreSQL \(format(parts.read, 2)) s, decoding them \
                \(format(parts.decode, 2)) s; writing the view's rows (the baseline) \(format(Double(rebuilt) / median(baselineRates), 2)) s; \
                the rebuild \(format(Double(rebuilt) / rate, 2)) s
                """)
        }
    }

    /// Seconds to read every event in batches as a rebuild does, and to decode what the projection reads of them,
    /// each summed alone.
    static func readingCost(_ store: EventStore, _ projection: OrderHistory, batchSize: Int) async throws -> (events: Int, read: Double, decode: Double) {
        var position = Position.start, read = 0.0, decode = 0.0, events = 0
        while true {
            let readStarted = ContinuousClock.now
            let batch = try await store.readAll(after: position, limit: batchSize, metadata: projection.readsMetadata)
            let decodeStarted = ContinuousClock.now
            for event in batch where projection.eventTypes.contains(event.type) { _ = try projection.prepare(event) }
            read += (decodeStarted - readStarted).seconds
            decode += (ContinuousClock.now - decodeStarted).seconds
            guard let last = batch.last else { return (events, read, decode) }
            events += batch.count
            position = last.position
        }
    }

    /// The view's rows for `orders` orders inserted straight into a new SQLite file with prepared statements, in one
    /// transaction: events per second (five per order, as the rebuild counts them).
    static func baseline(orders: Int) async throws -> Double {
        let baselinePath = FileManager.default.temporaryDirectory.appendingPathComponent("bench-baseline-\(UUID()).sqlite").path
        defer { for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: baselinePath + suffix) } }
        let baseline = try DatabasePool(path: baselinePath)
        try await baseline.write { try OrderHistory().createSchema($0) }
        let started = ContinuousClock.now
        try await baseline.write { db in
            let order = try db.makeStatement(sql: "INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
            let line = try db.makeStatement(sql: "INSERT INTO order_lines VALUES (?, ?, ?, ?, ?, ?, ?)")
            let step = try db.makeStatement(sql: "INSERT INTO order_timeline VALUES (?, ?, ?, ?, ?)")
            let at = Date().formatted(.iso8601)
            for index in 0..<orders {
                let id = "bench-\(index)"
                try order.execute(arguments: [id, "customer-\(index % 1000)", "shipped", nil, 2500, "EUR", at, at, index])
                for number in 1...(1 + index % 3) {
                    try line.execute(arguments: [id, number, "SKU-\(number)", "Product \(number)", 1250, "EUR", 2])
                }
                for (number, status) in ["placed", "awaiting-stock", "awaiting-payment", "confirmed", "shipped"].enumerated() {
                    try step.execute(arguments: [id, index * 5 + number, status, nil, at])
                }
            }
        }
        let rate = Double(orders * 5) / (ContinuousClock.now - started).seconds
        try baseline.close()
        return rate
    }

    /// An order's five events, with one to three lines.
    static func history(of index: Int) throws -> [Order.Event] {
        let id = "bench-\(index)"
        let lines = try (1...(1 + index % 3)).map {
            Order.Line(sku: "SKU-\($0)", name: "Product \($0)", unitPrice: try Money(minorUnits: 1250, currency: .eur), quantity: 2)
        }
        let total = try lines.reduce(Money.zero(.eur)) { try $0.adding(try $1.unitPrice.multiplied(by: $1.quantity)) }
        return [
            .placed(.init(order: id, customer: "customer-\(index % 1000)", lines: lines, total: total)),
            .stockRequested(.init(order: id)), .paymentRequested(.init(order: id)), .confirmed(.init(order: id)), .shipped(.init(order: id)),
        ]
    }
}

/// The process's resident memory, in KiB (VmRSS).
func residentKilobytes() -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
        let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
    else { return 0 }
    return Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
