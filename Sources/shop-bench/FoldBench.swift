import ArgumentParser
import Catalog
import EventStore
import Foundation
import Logging
import SharedKernel

/// A long stream folded from cold: a product's stock after many orders (a reservation and its commit each),
/// loaded by a command handler that keeps nothing yet, as after a restart. Against reading and decoding the same
/// events without folding them, in the same run; and at two lengths, to show that an event costs no more to fold
/// in a longer stream.
struct Fold: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Folding a long stream from cold against reading it.")

    @OptionGroup var database: BenchDatabase

    @Option(help: "Orders on the longer stream (two events each); the shorter one has half as many.")
    var orders: Int = 25_000

    @Option(help: "Rounds: each stream is read and folded this many times, in turns; the median counts.")
    var rounds: Int = 3

    func validate() throws {
        guard orders >= 2 else { throw ValidationError("--orders is at least 2") }
        guard rounds >= 1 else { throw ValidationError("--rounds is at least 1") }
    }

    func run() async throws {
        let (url, logger) = try await database.prepare()
        let store = EventStore(.init(database: url), logger: logger)
        let orders = orders, rounds = rounds
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await store.run() }
            defer { group.cancelAll() }
            await store.waitUntilRunning()
            print("""
                A product's stock folded from cold (as after a restart) against reading and decoding its events: \
                \(rounds) rounds, median. PostgreSQL with default durability (fsync on).

                events   read µs/event   fold µs/event   fold / read   commit on the kept state µs   cold start ms: folded / from a snapshot
                """)
            var perEvent: [Double] = [], perCommit: [Double] = [], fromSnapshot: [Double] = []
            let snapshots = Snapshotting<Stock.State>(schema: Stock.snapshotSchema, every: 1_000)
            for count in [orders / 2, orders] {
                let stream = try await Self.stock(orders: count, in: store)
                var reads: [Double] = [], folds: [Double] = [], commits: [Double] = [], loads: [Double] = []
                // The snapshot a service would have taken (its first load folds the stream and takes one).
                _ = try await CommandHandler<Stock>(store: store, codec: CatalogEvents.stock, snapshots: snapshots).load(stream)
                while try await store.snapshot(of: stream, schema: snapshots.schema) == nil { try await Task.sleep(for: .milliseconds(10)) }
                for _ in 0..<rounds {
                    let readStarted = ContinuousClock.now
                    let events = try await store.readStream(stream)
                    for event in events { _ = try event.decode(with: CatalogEvents.stock) }
                    reads.append((ContinuousClock.now - readStarted).seconds / Double(events.count))
                    let foldStarted = ContinuousClock.now
                    let (state, version) = try await CommandHandler<Stock>(store: store, codec: CatalogEvents.stock).load(stream)
                    folds.append((ContinuousClock.now - foldStarted).seconds / Double(version))
                    guard state.committed.count == min(count, Stock.rememberedCommits), Int(version) == events.count else {
                        throw BenchError("\(stream) folded to \(state.committed.count) committed orders at version \(version)")
                    }
                    commits.append(try Self.commitOnKeptState(state, stream: stream))
                    let loadStarted = ContinuousClock.now
                    let loaded = try await CommandHandler<Stock>(store: store, codec: CatalogEvents.stock, snapshots: snapshots).load(stream)
                    loads.append((ContinuousClock.now - loadStarted).seconds)
                    guard loaded.state == state else { throw BenchError("\(stream) loaded from its snapshot differs from its fold") }
                }
                let read = median(reads), fold = median(folds), commit = median(commits), load = median(loads)
                perEvent.append(fold)
                perCommit.append(commit)
                fromSnapshot.append(load)
                print("\(String(2 * count + 1).padding(toLength: 9, withPad: " ", startingAt: 0))"
                      + "\(format(read * 1e6, 1).padding(toLength: 16, withPad: " ", startingAt: 0))"
                      + "\(format(fold * 1e6, 1).padding(toLength: 16, withPad: " ", startingAt: 0))"
                      + "\(format(fold / read, 2).padding(toLength: 14, withPad: " ", startingAt: 0))"
                      + "\(format(commit * 1e6, 1).padding(toLength: 30, withPad: " ", startingAt: 0))"
                      + "\(format(fold * Double(2 * count + 1) * 1000, 1)) / \(format(load * 1000, 1))")
            }
            let growth = perEvent[1] / perEvent[0], commitGrowth = perCommit[1] / perCommit[0], loadGrowth = fromSnapshot[1] / fromSnapshot[0]
            print("""

                Fold per event, twice the stream against half of it: \(format(growth, 2)) \
                (goal ≤ 1.25, an event costs the same however long the stream: \(growth <= 1.25 ? "met" : "NOT MET"))
                Commit on the kept state, twice the stream against half of it: \(format(commitGrowth, 2)) \
                (goal ≤ 1.25, a command costs the same however many orders came before: \(commitGrowth <= 1.25 ? "met" : "NOT MET"))
                Cold start from the snapshot (at most 999 events folded after it), twice the stream against half of it: \(format(loadGrowth, 2)) \
                (goal ≤ 1.25, a restart costs the same however long the stream: \(loadGrowth <= 1.25 ? "met" : "NOT MET"); the state \
                holds at most \(Stock.rememberedCommits) committed orders, and so does the snapshot)
                """)
        }
    }

    /// Seconds to fold one more order's reservation commit into `kept` while `kept` is still held, as the state cache
    /// holds a kept state while a command changes it (median of 200): whatever the state shares is copied first.
    static func commitOnKeptState(_ kept: Stock.State, stream: StreamName) throws -> Double {
        let sku = try SKU(String(stream.description.dropFirst("stock-".count)))
        let reserved = Stock.replay([.reserved(.init(sku: sku, order: "one-more", quantity: 1))], from: kept)
        var seconds: [Double] = [], committed = 0
        for _ in 0..<200 {
            let started = ContinuousClock.now
            let next = Stock.replay([.committed(.init(sku: sku, order: "one-more", quantity: 1))], from: reserved)
            seconds.append((ContinuousClock.now - started).seconds)
            committed += next.committed.count
        }
        guard committed == 200 * min(kept.committed.count + 1, Stock.rememberedCommits) else { throw BenchError("the commit was not folded") }
        return median(seconds)
    }

    /// A stock stream of its own: received once, then `orders` orders each reserving one unit and committing it.
    static func stock(orders: Int, in store: EventStore) async throws -> StreamName {
        let id = "FOLD-\(UUID().uuidString.prefix(8))"
        let sku = try SKU(id), stream = try StreamName(category: "stock", id: id)
        var version: Int64 = 0
        var batch = [try NewEvent(Stock.Event.received(.init(sku: sku, quantity: orders)), codec: CatalogEvents.stock)]
        for index in 0..<orders {
            let order = "order-\(index)-\(UUID().uuidString.lowercased())"
            batch.append(try NewEvent(Stock.Event.reserved(.init(sku: sku, order: order, quantity: 1)), codec: CatalogEvents.stock))
            batch.append(try NewEvent(Stock.Event.committed(.init(sku: sku, order: order, quantity: 1)), codec: CatalogEvents.stock))
            if batch.count >= 1_000 || index == orders - 1 {
                version = try await store.append(batch, to: stream, expectedVersion: .exact(version)).streamVersion
                batch = []
            }
        }
        return stream
    }
}
