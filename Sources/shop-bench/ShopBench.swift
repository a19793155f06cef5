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
        subcommands: [Append.self, Rebuild.self, Fold.self, Checkout.self, BFFBench.self, BFFLoad.self, Probe.self]
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

/// Appends through the event store against a raw INSERT of the same rows into a table of the same shape (same
/// columns, same indexes), prepared the same way: one prepared statement per connection that takes each column as an
/// array and inserts `unnest(…)` of them, as the store's `append_events` does, without its stream lock, version check
/// and duplicate detection. Each scenario is measured in rounds; in each round both paths run for the same time, in
/// alternating order (raw first in odd rounds, the store first in even ones), and the round's ratio is taken; the
/// ratios' min / median / max are printed. A second database with `synchronous_commit = off` (for both paths) shows
/// the cost inside the server, without the flush that dominates a durable commit.
struct Append: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Event store appends against raw prepared INSERTs of the same rows.")

    @OptionGroup var database: BenchDatabase

    @Option(help: "Seconds each measurement runs.")
    var seconds: Double = 2

    @Option(help: "Rounds per scenario (at least 3): the paths alternate within each, and each round gives a ratio.")
    var rounds: Int = 3

    func validate() throws {
        guard rounds >= 3 else { throw ValidationError("--rounds is at least 3: a ratio of fewer is not a spread") }
        guard seconds > 0 else { throw ValidationError("--seconds is more than 0") }
    }

    func run() async throws {
        let (url, logger) = try await database.prepare()
        // The same schema in a database whose commits do not wait for their flush.
        let unflushed = url.with(database: url.database + "_unflushed")
        try await Checkout.withConnection(url, logger: logger) { connection in
            try await connection.run(PostgresQuery(unsafeSQL: "DROP DATABASE IF EXISTS \"\(unflushed.database)\""), logger: logger)
            try await connection.run(PostgresQuery(unsafeSQL: "CREATE DATABASE \"\(unflushed.database)\""), logger: logger)
            try await connection.run(PostgresQuery(unsafeSQL: "ALTER DATABASE \"\(unflushed.database)\" SET synchronous_commit = off"), logger: logger)
        }
        try await Migrator(directory: try Migrator.defaultDirectory(), folders: ["eventstore"]).migrate(unflushed, logger: logger)
        let duration = Duration.milliseconds(Int(seconds * 1000))
        let rounds = rounds

        try await withThrowingTaskGroup(of: Void.self) { group in
            func paths(_ url: DatabaseURL) async throws -> (store: EventStore, eager: EventStore, raw: PostgresClient) {
                let store = EventStore(.init(database: url, maximumConnections: 12), logger: logger)
                let eager = EventStore(.init(database: url, maximumConnections: 12, announceInterval: .zero), logger: logger)
                var configuration = PostgresClient.Configuration(
                    host: url.host, port: url.port, username: url.username, password: url.password, database: url.database, tls: .disable)
                configuration.options.maximumConnections = 12
                let raw = PostgresClient(configuration: configuration, backgroundLogger: logger)
                group.addTask { await store.run() }
                group.addTask { await eager.run() }
                group.addTask { await raw.run() }
                await store.waitUntilRunning()
                await eager.waitUntilRunning()
                try await raw.run("DROP TABLE IF EXISTS raw_events", logger: logger)
                try await raw.run("CREATE TABLE raw_events (LIKE events INCLUDING ALL)", logger: logger)
                return (store, eager, raw)
            }
            defer { group.cancelAll() }
            let durable = try await paths(url), fast = try await paths(unflushed)

            /// Each path's rates and the store's ratios to the first path, over `rounds` rounds, the order alternating.
            func compare(_ scenario: Scenario, _ paths: [Path], on bench: Bench) async throws -> (rates: [[Double]], ratios: [Double]) {
                var rates = Array(repeating: [Double](), count: paths.count), ratios: [Double] = []
                for round in 0..<rounds {
                    var measured = Array(repeating: 0.0, count: paths.count)
                    for index in round % 2 == 0 ? Array(paths.indices) : paths.indices.reversed() {
                        measured[index] = try await bench.measure(scenario, through: paths[index])
                    }
                    for index in paths.indices { rates[index].append(measured[index]) }
                    ratios.append(measured[1] / measured[0])
                }
                return (rates, ratios)
            }

            print("""
                Event store appends vs a raw INSERT of the same rows into a table of the same shape (same columns and \
                indexes), both prepared statements taking the columns as arrays. \(rounds) rounds of \(seconds) s per scenario, \
                the paths alternating within each round; rates are medians, ratios (store / raw) min / median / max of the \
                rounds' own ratios.

                """)
            let header = "scenario".padded(52) + "  raw rows/s  store events/s   ratio min / median / max   goal"
            print(header)
            print(String(repeating: "-", count: header.count))
            func row(_ name: String, _ result: (rates: [[Double]], ratios: [Double]), goal: Double?) {
                let spread = "\(format(result.ratios.min()!, 2)) / \(format(median(result.ratios), 2)) / \(format(result.ratios.max()!, 2))"
                let verdict = goal.map { "≥ \(format($0, 2))  \(median(result.ratios) >= $0 ? "met" : "NOT MET")" } ?? ""
                print(name.padded(52) + format(median(result.rates[0]), 0).leftPadded(12) + format(median(result.rates[1]), 0).leftPadded(16)
                      + spread.leftPadded(27) + "   " + verdict)
            }
            let durableBench = Bench(raw: durable.raw, logger: logger, duration: duration)
            let fastBench = Bench(raw: fast.raw, logger: logger, duration: duration)
            let one = Scenario(writers: 1, batch: 1), eight = Scenario(writers: 8, batch: 1), batch = Scenario(writers: 1, batch: 100)
            let oneResult = try await compare(one, [.raw, .store(durable.store)], on: durableBench)
            row(one.name + ", durable", oneResult, goal: nil)
            let eightResult = try await compare(eight, [.raw, .store(durable.store)], on: durableBench)
            row(eight.name + ", durable", eightResult, goal: 0.85)
            row(batch.name + ", durable", try await compare(batch, [.raw, .store(durable.store)], on: durableBench), goal: nil)
            // Without the flush, what is left of an append's cost is the server's work and the round trip.
            let inServer = try await compare(one, [.raw, .store(fast.store)], on: fastBench)
            row(one.name + ", no flush", inServer, goal: nil)
            row(eight.name + ", no flush", try await compare(eight, [.raw, .store(fast.store)], on: fastBench), goal: nil)
            row(batch.name + ", no flush", try await compare(batch, [.raw, .store(fast.store)], on: fastBench), goal: nil)

            // An append's cost inside the server, without the protocol, the round trip or the flush: 2,000 single-event
            // appends to one stream in a PL/pgSQL loop, through append_events and as the raw INSERT, alternating.
            var storeMilliseconds: [Double] = [], rawMilliseconds: [Double] = [], costRatios: [Double] = []
            for round in 0..<rounds {
                var measured = (store: 0.0, raw: 0.0)
                for which in round % 2 == 0 ? [0, 1] : [1, 0] {
                    let stream = "inside-\(round)-\(which)-\(UUID().uuidString.prefix(8))"
                    let loop = which == 0
                        ? "PERFORM append_events('\(stream)', i - 1, ARRAY[gen_random_uuid()], ARRAY['bench.happened'], ARRAY[1], ARRAY[payload], ARRAY[metadata]);"
                        : """
                          INSERT INTO raw_events (transaction_id, event_id, stream_id, stream_version, event_type, schema_version, payload, metadata)
                          SELECT pg_current_xact_id()::text::bigint, n.event_id, '\(stream)', i - 1 + n.ord, n.event_type, n.schema_version, n.payload::jsonb, n.metadata::jsonb
                            FROM unnest(ARRAY[gen_random_uuid()], ARRAY['bench.happened'], ARRAY[1], ARRAY[payload], ARRAY[metadata])
                                 WITH ORDINALITY AS n(event_id, event_type, schema_version, payload, metadata, ord);
                          """
                    let started = ContinuousClock.now
                    try await fast.raw.run(PostgresQuery(unsafeSQL: """
                        DO $$
                        DECLARE payload text := '{"sku":"MUG-001","quantity":1,"note":"a benchmark event"}';
                                metadata text := '{"actor":"bench","correlationID":"bench"}';
                        BEGIN
                          FOR i IN 1..2000 LOOP
                            \(loop)
                          END LOOP;
                        END $$
                        """), logger: logger)
                    let elapsed = (ContinuousClock.now - started).seconds * 1000
                    if which == 0 { measured.store = elapsed } else { measured.raw = elapsed }
                }
                storeMilliseconds.append(measured.store)
                rawMilliseconds.append(measured.raw)
                costRatios.append(measured.store / measured.raw)
            }
            let costRatio = median(costRatios)
            print("""

                Inside the server (2,000 single-event appends to one stream in a PL/pgSQL loop, no round trips, one commit): \
                append_events \(format(median(storeMilliseconds) / 2, 1)) µs an append, the raw INSERT \(format(median(rawMilliseconds) / 2, 1)) µs; \
                cost ratio min / median / max \(format(costRatios.min()!, 2)) / \(format(costRatio, 2)) / \(format(costRatios.max()!, 2)) \
                (goal ≤ 1.5: \(costRatio <= 1.5 ? "met" : "NOT MET")).
                """)

            let storeScaling = median(eightResult.rates[1]) / median(oneResult.rates[1])
            let rawScaling = median(eightResult.rates[0]) / median(oneResult.rates[0])
            print("""

                The goal for throughput: 8 writers at least 0.85 of raw. 8 writers / 1 writer: store \(format(storeScaling, 1))×, raw \(format(rawScaling, 1))× \
                (one raw durable commit takes \(format(1000 / median(oneResult.rates[0]), 2)) ms here).
                """)

            // The two ways the store could announce appends that it does not take.
            let notify = try await compare(eight, [.raw, .rawWithNotify], on: durableBench)
            let eager = try await compare(one, [.store(durable.store), .store(durable.eager)], on: durableBench)
            print("""

                Design checks (median of the rounds' ratios):
                - NOTIFY inside each transaction, 8 writers of raw INSERTs: \(format(median(notify.ratios), 2)) × the rate without \
                (min \(format(notify.ratios.min()!, 2)), max \(format(notify.ratios.max()!, 2))): notifying transactions commit one at a time.
                - A NOTIFY after every append, 1 writer: \(format(median(eager.ratios), 2)) × the rate with announcements throttled \
                to one per 10 ms (min \(format(eager.ratios.min()!, 2)), max \(format(eager.ratios.max()!, 2))).
                """)
        }
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
                        case .raw:
                            for try await _ in try await raw.execute(try RawInsert(events, stream: stream, after: version), logger: logger) {}
                            version += Int64(events.count)
                        case .rawWithNotify:
                            for try await _ in try await raw.execute(try RawInsertNotifying(events, stream: stream, after: version), logger: logger) {}
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
}

/// The raw baseline: the store's rows, bound as the store binds them (a text array per column, the same JSON
/// encodings), inserted by one prepared statement.
struct RawInsert: PostgresPreparedStatement {
    static let insert = """
        INSERT INTO raw_events (transaction_id, event_id, stream_id, stream_version, event_type, schema_version, payload, metadata)
        SELECT pg_current_xact_id()::text::bigint, n.event_id, $1, $2 + n.ord, n.event_type, n.schema_version, n.payload::jsonb, n.metadata::jsonb
          FROM unnest($3::uuid[], $4::text[], $5::integer[], $6::text[], $7::text[])
               WITH ORDINALITY AS n(event_id, event_type, schema_version, payload, metadata, ord)
        """
    static let sql = insert
    typealias Row = ()

    let stream: String, after: Int64
    let ids: [UUID], types: [String], versions: [Int32], payloads: [String], metadata: [String]

    init(_ events: [NewEvent], stream: StreamName, after version: Int64) throws {
        let encoder = JSONEncoder.eventPayloads
        self.stream = stream.rawValue
        after = version
        ids = events.map(\.id)
        types = events.map(\.type)
        versions = events.map { Int32($0.schemaVersion) }
        payloads = events.map { String(decoding: $0.payload, as: UTF8.self) }
        metadata = try events.map { String(decoding: try encoder.encode($0.metadata), as: UTF8.self) }
    }

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 7)
        bindings.append(stream)
        bindings.append(after)
        bindings.append(ids)
        bindings.append(types)
        bindings.append(versions)
        bindings.append(payloads)
        bindings.append(metadata)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row { () }
}

/// The same, notifying a channel in the inserting transaction.
struct RawInsertNotifying: PostgresPreparedStatement {
    static let sql = "WITH inserted AS (\(RawInsert.insert) RETURNING 1) SELECT pg_notify('bench', '') FROM inserted LIMIT 1"
    typealias Row = ()
    let insert: RawInsert
    init(_ events: [NewEvent], stream: StreamName, after version: Int64) throws { insert = try RawInsert(events, stream: stream, after: version) }
    func makeBindings() throws -> PostgresBindings { try insert.makeBindings() }
    func decodeRow(_ row: PostgresRow) throws -> Row { () }
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
