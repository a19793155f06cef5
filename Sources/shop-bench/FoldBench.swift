import ArgumentParser
import Catalog
import EventStore
import Foundation
import Logging
import SharedKernel

/// A long stream folded from cold: a product's stock after many orders (a reservation and its commit each),
/// loaded by a command handler that keeps nothing yet, as after a restart. Against reading and decoding the same
/// events without folding them, in the same run; and at several lengths, to show that an event costs no more to fold
/// in a longer stream, and that a cold start from the snapshot and a command cost the same however long it is.
struct Fold: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Folding a long stream from cold against reading it.")

    @OptionGroup var database: BenchDatabase

    @Option(parsing: .upToNextOption, help: "Orders on each stream measured (two events each), shortest first.")
    var orders: [Int] = [500, 12_500, 25_000]

    @Option(help: "Rounds: each stream is read and folded this many times, in turns; the median counts.")
    var rounds: Int = 3

    func validate() throws {
        guard orders.count >= 2, orders.allSatisfy({ $0 >= 2 }), orders == orders.sorted() else {
            throw ValidationError("--orders takes two or more lengths of at least 2, shortest first")
        }
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

                events    read µs/event  fold µs/event  fold / read  fold a commit µs  command ms  cold start ms: folded / from a snapshot
                """)
            var perEvent: [Double] = [], perCommit: [Double] = [], fromSnapshot: [Double] = [], perCommand: [Double] = []
            let snapshots = Snapshotting<Stock.State>(schema: Stock.snapshotSchema, every: 1_000)
            for count in orders {
                let stream = try await Self.stock(orders: count, in: store)
                var reads: [Double] = [], folds: [Double] = [], commits: [Double] = [], loads: [Double] = [], commands: [Double] = []
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
                // Last: the commands lengthen the stream.
                commands.append(try await Self.commandLatency(on: stream, handler: CommandHandler<Stock>(
                    store: store, codec: CatalogEvents.stock, snapshots: snapshots)))
                let read = median(reads), fold = median(folds), commit = median(commits), load = median(loads), command = median(commands)
                perEvent.append(fold)
                perCommit.append(commit)
                fromSnapshot.append(load)
                perCommand.append(command)
                print("\(String(2 * count + 1).padding(toLength: 10, withPad: " ", startingAt: 0))"
                      + "\(format(read * 1e6, 1).padding(toLength: 15, withPad: " ", startingAt: 0))"
                      + "\(format(fold * 1e6, 1).padding(toLength: 15, withPad: " ", startingAt: 0))"
                      + "\(format(fold / read, 2).padding(toLength: 13, withPad: " ", startingAt: 0))"
                      + "\(format(commit * 1e6, 1).padding(toLength: 18, withPad: " ", startingAt: 0))"
                      + "\(format(command * 1e3, 2).padding(toLength: 12, withPad: " ", startingAt: 0))"
                      + "\(format(fold * Double(2 * count + 1) * 1000, 1)) / \(format(load * 1000, 1))")
            }
            let longest = "the longest stream against the shortest"
            let growth = perEvent.last! / perEvent[0], commitGrowth = perCommit.last! / perCommit[0]
            let loadGrowth = fromSnapshot.last! / fromSnapshot[0], commandGrowth = perCommand.last! / perCommand[0]
            func verdict(_ ratio: Double) -> String { ratio <= 1.25 ? "met" : "NOT MET" }
            print("""

                Fold per event, \(longest): \(format(growth, 2)) \
                (goal ≤ 1.25, an event costs the same however long the stream: \(verdict(growth)))
                Folding one more commit into the kept state, \(longest): \(format(commitGrowth, 2)) \
                (goal ≤ 1.25, deciding costs the same however many orders came before: \(verdict(commitGrowth)))
                A command on the stream (reserve, then commit; read what is new, decide, append), \(longest): \(format(commandGrowth, 2)) \
                (goal ≤ 1.25: \(verdict(commandGrowth)))
                Cold start from the snapshot (at most 999 events folded after it), \(longest): \(format(loadGrowth, 2)) \
                (goal ≤ 1.25, a restart costs the same however long the stream: \(verdict(loadGrowth)); the state \
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

    /// Seconds a command takes on `stream` with `handler` (median of 20 reservations and their commits, one after
    /// another; the first starts from the snapshot): what is new is read, decided on, and appended, as a service's
    /// command does.
    static func commandLatency(on stream: StreamName, handler: CommandHandler<Stock>) async throws -> Double {
        let sku = try SKU(String(stream.description.dropFirst("stock-".count)))
        try await handler.handle(.receive(sku, quantity: 20), on: stream)
        var seconds: [Double] = []
        for index in 0..<20 {
            let order = "command-\(index)-\(UUID().uuidString.prefix(8))"
            for command in [Stock.Command.reserve(sku, order: order, quantity: 1), .commit(sku, order: order)] {
                let started = ContinuousClock.now
                try await handler.handle(command, on: stream)
                seconds.append((ContinuousClock.now - started).seconds)
            }
        }
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
