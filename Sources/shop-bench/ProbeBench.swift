import ArgumentParser
import EventStore
import Foundation
import Logging
import PostgresNIO

/// What a readiness probe or a metrics scrape pays to learn how far behind a view is, as the backlog grows: the
/// store's bounded backlog (counted up to 10,000, estimated beyond) against the exact `count(*)` it replaced, both
/// from the first position (the largest backlog there is), alternating, at each size.
struct Probe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The backlog a readiness probe asks for, as the store grows.")

    @OptionGroup var database: BenchDatabase

    @Option(parsing: .upToNextOption, help: "Events in the store at each measurement (the store grows to each in turn).")
    var sizes: [Int] = [0, 100_000, 1_000_000, 5_000_000]

    @Option(help: "Measurements of each query at each size (alternating).")
    var repeats: Int = 5

    func validate() throws {
        guard sizes == sizes.sorted(), sizes.allSatisfy({ $0 >= 0 }) else { throw ValidationError("--sizes grow, from 0 up") }
        guard repeats >= 3 else { throw ValidationError("--repeats is at least 3") }
    }

    func run() async throws {
        let (url, logger) = try await database.prepare()
        let store = EventStore(.init(database: url), logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await store.run() }
            defer { group.cancelAll() }
            await store.waitUntilRunning()
            say("""
                A view's backlog from the first position (all of the store behind it), asked \(repeats) times at each size, \
                alternating: the store's bounded backlog against the count(*) it replaced. ms min / median / max.

                """)
            say("events behind".padded(16) + "bounded (ms)".leftPadded(24) + "count(*) (ms)".leftPadded(26) + "   bounded says")
            var stored = 0
            for size in sizes {
                if size > stored {
                    try await Checkout.withConnection(url, logger: logger) { connection in
                        // In batches of a million, each its own transaction, as many streams of 1,000 events.
                        var from = stored
                        while from < size {
                            let to = min(size, from + 1_000_000)
                            try await connection.run("""
                                INSERT INTO events (transaction_id, event_id, stream_id, stream_version, event_type, schema_version, payload, metadata)
                                SELECT pg_current_xact_id()::text::bigint, gen_random_uuid(), 'probe-' || (n / 1000), n % 1000 + 1, 'probe.happened', 1,
                                       '{"sku":"MUG-001","quantity":1}'::jsonb, '{}'::jsonb
                                FROM generate_series(\(Int64(from)), \(Int64(to - 1))) AS n
                                """, logger: logger)
                            from = to
                        }
                        try await connection.run("VACUUM ANALYZE events", logger: logger)
                    }
                    stored = size
                }
                var bounded: [Double] = [], counted: [Double] = []
                var said = ""
                for round in 0..<repeats {
                    for which in round % 2 == 0 ? [0, 1] : [1, 0] {
                        let started = ContinuousClock.now
                        if which == 0 {
                            let backlog = try await store.backlog(after: .start)
                            said = "\(backlog.events)\(backlog.exact ? "" : " (estimated)")"
                            bounded.append((ContinuousClock.now - started).seconds * 1000)
                        } else {
                            try await Checkout.withConnection(url, logger: logger) { connection in
                                let started = ContinuousClock.now
                                for try await _ in try await connection.query(
                                    "SELECT count(*), min(recorded_at) FROM events WHERE (transaction_id, global_position) > (0, 0)",
                                    logger: logger).decode((Int, Date?).self) {}
                                counted.append((ContinuousClock.now - started).seconds * 1000)
                            }
                        }
                    }
                }
                func spread(_ values: [Double]) -> String {
                    "\(format(values.min()!, 2)) / \(format(median(values), 2)) / \(format(values.max()!, 2))"
                }
                say(String(size).padded(16) + spread(bounded).leftPadded(24) + spread(counted).leftPadded(26) + "   " + said)
            }
        }
    }
}
