import ArgumentParser
import Essentials
import EventStore
import Foundation
import Logging
import PostgresNIO

@main
struct ShopBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shop-bench",
        abstract: "Benchmarks that print figures and their ratio to a baseline measured in the same run (use bin/bench).",
        subcommands: [Append.self, Rebuild.self, Fold.self, Checkout.self, BFFBench.self]
    )
}

/// The scratch database every benchmark runs on, with the event store's schema.
struct BenchDatabase: ParsableArguments {
    @Option(help: "A scratch database's PostgreSQL URL (bin/bench makes one).")
    var databaseURL: String

    func prepare() async throws -> (DatabaseURL, Logger) {
        var logger = Logger(label: "shop-bench")
        logger.logLevel = .error
        let url = try DatabaseURL(databaseURL)
        try await Migrator(directory: try Migrator.defaultDirectory(), folders: ["eventstore"]).migrate(url, logger: logger)
        return (url, logger)
    }
}

/// Appends through the event store against plain parameterised INSERTs of the same rows into a table of the
/// same shape (same columns, same indexes), measured in alternating rounds so that both see the same machine.
struct Append: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Event store appends against raw INSERTs.")

    @OptionGroup var database: BenchDatabase

    @Option(help: "Seconds each measurement runs.")
    var seconds: Double = 2

    @Option(help: "Rounds: each scenario is measured this many times, alternating raw and store; the median counts.")
    var rounds: Int = 3

    func run() async throws {
        let (url, logger) = try await database.prepare()
        let store = EventStore(.init(database: url, maximumConnections: 12), logger: logger)
        let eagerStore = EventStore(.init(database: url, maximumConnections: 12, announceInterval: .zero), logger: logger)
        var configuration = PostgresClient.Configuration(
            host: url.host, port: url.port, username: url.username, password: url.password, database: url.database, tls: .disable)
        configuration.options.maximumConnections = 12
        let raw = PostgresClient(configuration: configuration, backgroundLogger: logger)
        let duration = Duration.milliseconds(Int(seconds * 1000))
        let rounds = rounds

        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await store.run() }
            group.addTask { await eagerStore.run() }
            group.addTask { await raw.run() }
            defer { group.cancelAll() }
            await store.waitUntilRunning()
            await eagerStore.waitUntilRunning()
            try await raw.run("DROP TABLE IF EXISTS raw_events", logger: logger)
            try await raw.run("CREATE TABLE raw_events (LIKE events INCLUDING ALL)", logger: logger)

            let bench = Bench(raw: raw, logger: logger, duration: duration)
            /// The median rate of each path over `rounds` rounds, the paths taking turns within a round.
            func compare(_ scenario: Scenario, _ paths: [Path]) async throws -> [Double] {
                var rates = Array(repeating: [Double](), count: paths.count)
                for _ in 0..<rounds {
                    for (index, path) in paths.enumerated() {
                        rates[index].append(try await bench.measure(scenario, through: path))
                    }
                }
                return rates.map(median)
            }

            print("""
                Event store appends vs plain parameterised INSERTs of the same rows into a table of the same shape \
                (same columns and indexes): \(rounds) alternating rounds of \(seconds) s, median rows/s. PostgreSQL \
                with default durability (fsync on).

                """)
            let header = "scenario".padded(36) + "   raw rows/s   store events/s   ratio   goal"
            print(header)
            print(String(repeating: "-", count: header.count))
            let one = Scenario(writers: 1, batch: 1), eight = Scenario(writers: 8, batch: 1), batch = Scenario(writers: 1, batch: 100)
            let oneRates = try await compare(one, [.raw, .store(store)])
            report(one, raw: oneRates[0], store: oneRates[1], goal: 0.8)
            let eightRates = try await compare(eight, [.raw, .store(store)])
            report(eight, raw: eightRates[0], store: eightRates[1], goal: 0.8)
            let batchRates = try await compare(batch, [.raw, .store(store)])
            report(batch, raw: batchRates[0], store: batchRates[1], goal: 0.6)

            let storeScaling = eightRates[1] / oneRates[1], rawScaling = eightRates[0] / oneRates[0]
            print("""

                8 writers / 1 writer: store \(format(storeScaling, 1))×, raw INSERT \(format(rawScaling, 1))× \
                (goal ≥ 4×: \(storeScaling >= 4 ? "met" : "NOT MET")). One raw commit takes \(format(1000 / oneRates[0], 2)) ms \
                here; group commit multiplies throughput only while commits wait on a slow flush, so where the \
                baseline itself cannot scale 4×, compare the two scalings: the store's is \
                \(format(storeScaling / rawScaling, 2)) of raw's.
                """)

            // The two ways the store could announce appends that it does not take.
            let notifyRates = try await compare(eight, [.raw, .rawWithNotify])
            let eagerRates = try await compare(one, [.store(store), .store(eagerStore)])
            print("""

                Design checks:
                - NOTIFY inside each transaction, 8 writers of plain INSERTs: \(format(notifyRates[1], 0)) rows/s against \
                \(format(notifyRates[0], 0)) without (\(format(notifyRates[1] / notifyRates[0], 2))×): notifying \
                transactions commit one at a time.
                - A NOTIFY after every append, 1 writer: \(format(eagerRates[1], 0)) events/s against \(format(eagerRates[0], 0)) \
                with announcements throttled to one per 10 ms (\(format(eagerRates[1] / eagerRates[0], 2))×).
                """)
        }
    }

    func report(_ scenario: Scenario, raw: Double, store: Double, goal: Double) {
        let ratio = store / raw
        print(scenario.name.padded(36) + format(raw, 0).leftPadded(13) + format(store, 0).leftPadded(17)
              + format(ratio, 2).leftPadded(8) + "   ≥ \(format(goal, 1))  \(ratio >= goal ? "met" : "NOT MET")")
    }
}

struct Scenario {
    let writers: Int
    let batch: Int

    var name: String {
        "\(writers) writer\(writers == 1 ? "" : "s"), \(batch) event\(batch == 1 ? "" : "s") per append"
    }
}

enum Path {
    case raw, rawWithNotify
    case store(EventStore)
}

struct Bench {
    let raw: PostgresClient
    let logger: Logger
    let duration: Duration

    /// Rows (events) per second written by `scenario.writers` concurrent writers for `duration`.
    func measure(_ scenario: Scenario, through path: Path) async throws -> Double {
        let deadline = ContinuousClock.now + duration
        let started = ContinuousClock.now
        let rows = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<scenario.writers {
                group.addTask {
                    let stream = try StreamName(category: "bench", id: UUID().uuidString)
                    var version: Int64 = 0, written = 0
                    while ContinuousClock.now < deadline {
                        let events = (0..<scenario.batch).map { index in
                            NewEvent(type: "bench.happened", payload: Data(#"{"sku":"MUG-001","quantity":\#(index + 1),"note":"a benchmark event"}"#.utf8),
                                     metadata: EventMetadata(correlationID: "bench", actor: "bench"))
                        }
                        switch path {
                        case .store(let store):
                            version = try await store.append(events, to: stream, expectedVersion: .exact(version)).streamVersion
                        case .raw, .rawWithNotify:
                            let notify = if case .rawWithNotify = path { true } else { false }
                            try await insertRaw(events, stream: stream, from: version + 1, notify: notify)
                            version += Int64(events.count)
                        }
                        written += events.count
                    }
                    return written
                }
            }
            return try await group.reduce(0, +)
        }
        return Double(rows) / (ContinuousClock.now - started).seconds
    }

    /// One plain parameterised INSERT of the same rows the store would write.
    func insertRaw(_ events: [NewEvent], stream: StreamName, from version: Int64, notify: Bool) async throws {
        var bindings = PostgresBindings(capacity: events.count * 7)
        var values: [String] = []
        let encoder = JSONEncoder()
        for (index, event) in events.enumerated() {
            let base = index * 7
            values.append("(pg_current_xact_id()::text::bigint, $\(base + 1), $\(base + 2), $\(base + 3), $\(base + 4), $\(base + 5), $\(base + 6)::jsonb, $\(base + 7)::jsonb)")
            bindings.append(event.id)
            bindings.append(stream.rawValue)
            bindings.append(version + Int64(index))
            bindings.append(event.type)
            bindings.append(Int32(event.schemaVersion))
            bindings.append(String(decoding: event.payload, as: UTF8.self))
            bindings.append(String(decoding: try encoder.encode(event.metadata), as: UTF8.self))
        }
        let insert = """
            INSERT INTO raw_events (transaction_id, event_id, stream_id, stream_version, event_type, schema_version, payload, metadata)
            VALUES \(values.joined(separator: ", "))
            """
        let sql = notify ? "WITH inserted AS (\(insert) RETURNING 1) SELECT pg_notify('bench', '') FROM inserted LIMIT 1" : insert
        try await raw.run(PostgresQuery(unsafeSQL: sql, binds: bindings), logger: logger)
    }
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
}

func format(_ value: Double, _ decimals: Int) -> String { String(format: "%.\(decimals)f", value) }

extension String {
    func padded(_ width: Int) -> String { padding(toLength: width, withPad: " ", startingAt: 0) }
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}
