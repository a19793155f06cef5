import ArgumentParser
import EventStore
import Foundation
import Logging
import PostgresNIO

@main
struct ShopBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shop-bench",
        abstract: "Benchmarks that print figures and their ratio to a baseline measured in the same run (use bin/bench).",
        subcommands: [Append.self]
    )
}

/// Appends through the event store against plain parameterised INSERTs of the same rows into a table of the
/// same shape (same columns, same indexes), measured in alternating rounds so that both see the same machine.
struct Append: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Event store appends against raw INSERTs.")

    @Option(help: "A scratch database's PostgreSQL URL (bin/bench makes one).")
    var databaseURL: String

    @Option(help: "Seconds each measurement runs.")
    var seconds: Double = 2

    @Option(help: "Rounds: each scenario is measured this many times, alternating raw and store; the median counts.")
    var rounds: Int = 3

    func run() async throws {
        var logger = Logger(label: "shop-bench")
        logger.logLevel = .error
        let url = try DatabaseURL(databaseURL)
        try await Migrator(directory: try Migrator.defaultDirectory(), folders: ["eventstore"]).migrate(url, logger: logger)
        let store = EventStore(.init(database: url, maximumConnections: 12), logger: logger)
        var configuration = PostgresClient.Configuration(
            host: url.host, port: url.port, username: url.username, password: url.password, database: url.database, tls: .disable)
        configuration.options.maximumConnections = 12
        let raw = PostgresClient(configuration: configuration, backgroundLogger: logger)
        let duration = Duration.milliseconds(Int(seconds * 1000))
        let rounds = rounds

        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await store.run() }
            group.addTask { await raw.run() }
            defer { group.cancelAll() }
            await store.waitUntilRunning()
            try await raw.run("DROP TABLE IF EXISTS raw_events", logger: logger)
            try await raw.run("CREATE TABLE raw_events (LIKE events INCLUDING ALL)", logger: logger)

            let bench = Bench(store: store, raw: raw, logger: logger, duration: duration)
            print("""
                Event store appends vs plain INSERTs of the same rows (same columns and indexes), \(rounds) alternating \
                rounds of \(seconds) s each, median rows/s. PostgreSQL with default durability (fsync on).

                """)
            let header = "scenario".padding(toLength: 36, withPad: " ", startingAt: 0)
                + "   raw rows/s   store events/s   ratio   goal"
            print(header)
            print(String(repeating: "-", count: header.count))

            var storeSingle1 = 0.0
            for scenario in [Scenario(writers: 1, batch: 1, goal: 0.8), Scenario(writers: 8, batch: 1, goal: 0.8),
                             Scenario(writers: 1, batch: 100, goal: 0.6)] {
                var rawRates: [Double] = [], storeRates: [Double] = []
                for _ in 0..<rounds {
                    rawRates.append(try await bench.measure(scenario, through: .raw))
                    storeRates.append(try await bench.measure(scenario, through: .store))
                }
                let rawRate = median(rawRates), storeRate = median(storeRates)
                if scenario.writers == 1 && scenario.batch == 1 { storeSingle1 = storeRate }
                if scenario.writers == 8 && scenario.batch == 1 {
                    scenario.print(raw: rawRate, store: storeRate)
                    let scaling = storeRate / storeSingle1
                    print("\("  store, 8 writers / 1 writer".padding(toLength: 36, withPad: " ", startingAt: 0))\(String(repeating: " ", count: 31))\(format(scaling, 1))×   ≥ 4×  \(scaling >= 4 ? "met" : "NOT MET")")
                } else {
                    scenario.print(raw: rawRate, store: storeRate)
                }
            }

            // Why the store announces appends after commit rather than with NOTIFY inside the transaction.
            var plain: [Double] = [], notifying: [Double] = []
            let eight = Scenario(writers: 8, batch: 1, goal: 0)
            for _ in 0..<rounds {
                plain.append(try await bench.measure(eight, through: .raw))
                notifying.append(try await bench.measure(eight, through: .rawWithNotify))
            }
            print("""

                Design check: 8 writers of plain INSERTs \(format(median(plain), 0)) rows/s; the same with a NOTIFY in each \
                transaction \(format(median(notifying), 0)) rows/s (\(format(median(notifying) / median(plain), 2))×): \
                notifying transactions commit one at a time, so the store notifies after commit instead.
                """)
        }
    }
}

struct Scenario {
    let writers: Int
    let batch: Int
    let goal: Double

    var name: String {
        "\(writers) writer\(writers == 1 ? "" : "s"), \(batch) event\(batch == 1 ? "" : "s") per append"
    }

    func print(raw: Double, store: Double) {
        let ratio = store / raw
        let line = name.padding(toLength: 36, withPad: " ", startingAt: 0)
            + format(raw, 0).leftPadded(13) + format(store, 0).leftPadded(17) + format(ratio, 2).leftPadded(8)
            + "   ≥ \(format(goal, 1))  \(ratio >= goal ? "met" : "NOT MET")"
        Swift.print(line)
    }
}

enum Path { case raw, rawWithNotify, store }

struct Bench {
    let store: EventStore
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
                        case .store:
                            version = try await store.append(events, to: stream, expectedVersion: .exact(version)).streamVersion
                        case .raw, .rawWithNotify:
                            try await insertRaw(events, stream: stream, from: version + 1, notify: path == .rawWithNotify)
                            version += Int64(events.count)
                        }
                        written += events.count
                    }
                    return written
                }
            }
            return try await group.reduce(0, +)
        }
        let elapsed = ContinuousClock.now - started
        return Double(rows) / (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18)
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
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}
