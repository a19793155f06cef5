import ArgumentParser
import Essentials
import EventStore
import Foundation
import OrderingService
import PostgresNIO
import Telemetry

struct OrdersCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "orders", abstract: "Follow orders across the contexts.", subcommands: [Trace.self])

    /// The whole life of one order, from the three event stores and the saga's timeline: every event whose
    /// metadata carries the checkout's correlation id (or whose stream is the order's or its payment's), and
    /// every attempt of every saga step, in time order, with the service that did it and the time in between.
    struct Trace: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print one order's life across Catalog, Ordering and Billing: events and saga steps in time order.",
            discussion: "Reads each context's database: $SHOP_CATALOG_DATABASE_URL, $SHOP_ORDERING_DATABASE_URL, $SHOP_BILLING_DATABASE_URL.")

        @Argument(help: "The order's id.") var order: String
        @Flag(help: "Print JSON lines, one per entry, for tools.") var json = false

        struct Entry: Encodable {
            let at: Date, service: String, kind: String, what: String, detail: String
            let correlationId: String?, traceId: String?
            var durationMs: Int?
        }

        func run() async throws {
            let logger = makeLogger("shop-admin")
            let order = self.order
            let ordering = try Context.ordering.databaseURL()
            // The order's own stream says which correlation id its checkout had.
            let (placed, steps) = try await withEventStore(ordering, logger: logger) { store -> ([Entry], [Entry]) in
                let placed = try await store.withConnection { connection in
                    try await Self.events(on: connection, service: "ordering", correlation: nil, streams: ["order-\(order)"], logger: logger)
                }
                return (placed, try await Self.steps(of: order, in: Sagas(store: store)))
            }
            guard let first = placed.first else { throw Failure("there is no order '\(order.prefix(80))' in Ordering's event store") }
            let correlation = first.correlationId ?? order
            var entries: [Entry] = steps
            for context in Context.allCases {
                let url = try context.databaseURL()
                let streams = ["order-\(order)", "payment-\(order)"]
                entries += try await withEventStore(url, logger: logger) { store in
                    try await store.withConnection { connection in
                        try await Self.events(on: connection, service: context.rawValue, correlation: correlation, streams: streams, logger: logger)
                    }
                }
            }
            entries.sort { $0.at < $1.at }
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
                encoder.dateEncodingStrategy = .iso8601
                for entry in entries { print(String(decoding: try encoder.encode(entry), as: UTF8.self)) }
                return
            }
            let trace = first.traceId ?? "-"
            print("order \(order): correlation \(correlation), trace \(trace)")
            guard let start = entries.first?.at else { return }
            var previous = start
            let rows = entries.map { entry -> [String] in
                defer { previous = entry.at }
                let offset = Int((entry.at.timeIntervalSince(start) * 1000).rounded())
                let gap = Int((entry.at.timeIntervalSince(previous) * 1000).rounded())
                return ["+\(offset) ms", gap > 0 ? "\(gap) ms" : "", entry.service, entry.kind, entry.what,
                        entry.detail + (entry.durationMs.map { " (\($0) ms)" } ?? "")]
            }
            printTable(["AT", "WAITED", "SERVICE", "KIND", "WHAT", "DETAIL"], rows)
        }

        static func events(on connection: PostgresConnection, service: String, correlation: String?, streams: [String], logger: Logger) async throws -> [Entry] {
            let rows = try await connection.query("""
                SELECT recorded_at, stream_id, stream_version, event_type, metadata->>'correlationId', metadata->>'traceparent', metadata->>'actor'
                FROM events
                WHERE stream_id = ANY(\(streams)) OR (\(correlation)::text IS NOT NULL AND metadata->>'correlationId' = \(correlation))
                ORDER BY global_position
                """, logger: logger)
            var entries: [Entry] = []
            for try await (at, stream, version, type, correlation, traceparent, actor) in rows.decode((Date, String, Int64, String, String?, String?, String?).self) {
                entries.append(Entry(at: at, service: service, kind: "event", what: type,
                                     detail: "\(stream)@\(version)" + (actor.map { " by \($0)" } ?? ""),
                                     correlationId: correlation, traceId: TraceContext(traceparent: traceparent)?.traceID))
            }
            return entries
        }

        /// The saga's timeline, as Ordering's ``Sagas`` reads it.
        static func steps(of order: String, in sagas: Sagas) async throws -> [Entry] {
            guard let instance = try await sagas.instance(order) else { return [] }
            let traceID = TraceContext(traceparent: instance.traceparent)?.traceID
            return try await sagas.timeline(order).map { step in
                var entry = Entry(at: step.startedAt, service: "ordering", kind: "saga", what: "\(step.step) #\(step.attempt)",
                                  detail: step.outcome.rawValue + (step.reason.map { ": \($0)" } ?? ""),
                                  correlationId: instance.correlationID, traceId: traceID)
                entry.durationMs = Int((step.finishedAt.timeIntervalSince(step.startedAt) * 1000).rounded())
                return entry
            }
        }
    }
}
