import ArgumentParser
import EventStore
import Foundation
import Ordering
import OrderingService

struct SagasCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sagas",
        abstract: "Look into the order fulfilment saga and re-drive parked instances (Ordering's database).",
        subcommands: [List.self, Show.self, Retry.self]
    )

    struct Options: ParsableArguments {
        @Option(help: "Ordering's PostgreSQL URL (default: $SHOP_ORDERING_DATABASE_URL).")
        var databaseURL: String?

        func withSagas<Result: Sendable>(_ body: @Sendable (Sagas) async throws -> Result) async throws -> Result {
            let url = try Context.ordering.databaseURL(databaseURL)
            do {
                return try await withEventStore(url, logger: makeLogger("shop-admin")) { try await body(Sagas(store: $0)) }
            } catch let error as Sagas.SagaError {
                throw Failure(error.description)
            } catch let error as Failure {
                throw error
            } catch {
                throw Failure("cannot read the sagas in \(url): \(describe(error))")
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Instances, newest first, with their status and step.")
        @OptionGroup var options: Options
        @Option(help: "Only instances in this status: \(Fulfilment.Status.allCases.map(\.rawValue).joined(separator: ", ")).")
        var state: String?
        @Option(help: "How many to show.")
        var limit: Int = 50

        func validate() throws {
            if let state, Fulfilment.Status(rawValue: state) == nil {
                throw ValidationError("--state is one of \(Fulfilment.Status.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            guard (1...10_000).contains(limit) else { throw ValidationError("--limit is 1 to 10000") }
        }

        func run() async throws {
            let status = state.flatMap(Fulfilment.Status.init(rawValue:)), limit = self.limit
            let (instances, counts) = try await options.withSagas { sagas in
                (try await sagas.list(status: status, limit: limit), try await sagas.counts())
            }
            let summary = Fulfilment.Status.allCases.compactMap { status in counts[status].map { "\($0) \(status)" } }
            print(summary.isEmpty ? "no sagas" : summary.joined(separator: ", "))
            guard !instances.isEmpty else { return }
            print("")
            let rows = instances.map { instance in
                [instance.id, instance.status.rawValue, instance.step?.rawValue ?? "-", Self.time(instance.updatedAt), instance.state.reason ?? ""]
            }
            printTable(["SAGA", "STATUS", "STEP", "UPDATED", "REASON"], rows)
        }

        static func time(_ date: Date) -> String { date.formatted(.iso8601) }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One instance and its timeline: each step, attempt, outcome, timing and reason.")
        @OptionGroup var options: Options
        @Argument(help: "The saga's id (the order's id).")
        var id: String

        func run() async throws {
            let id = self.id
            let (instance, timeline) = try await options.withSagas { sagas in
                guard let instance = try await sagas.instance(id) else { throw Sagas.SagaError.unknown(id) }
                return (instance, try await sagas.timeline(id))
            }
            let view = SagaView(instance)
            print("saga \(view.id): \(view.status)\(view.step.map { " at \($0)" } ?? "")\(view.reason.map { ": \($0)" } ?? "")")
            print("order for \(instance.state.customer), \(instance.state.total), card \(view.card)")
            print("done: \(view.done.isEmpty ? "-" : view.done.joined(separator: ", "))\(view.unsure.isEmpty ? "" : "; unsure: \(view.unsure.joined(separator: ", "))")")
            if let due = view.dueAt { print("due: \(due.formatted(.iso8601))") }
            print("")
            let rows = timeline.map { entry in
                [entry.startedAt.formatted(.iso8601), entry.step, "\(entry.attempt)", entry.outcome.rawValue,
                 "\(Int((entry.finishedAt.timeIntervalSince(entry.startedAt) * 1000).rounded())) ms", entry.reason ?? ""]
            }
            printTable(["STARTED", "STEP", "ATTEMPT", "OUTCOME", "TOOK", "REASON"], rows)
        }
    }

    struct Retry: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Re-drive a parked instance: its step is tried again, with a fresh retry budget.",
            discussion: "A running Ordering service picks it up at its next poll (half a second by default).")
        @OptionGroup var options: Options
        @Argument(help: "The saga's id (the order's id).")
        var id: String

        func run() async throws {
            let id = self.id
            let instance = try await options.withSagas { try await $0.retry(id) }
            print("saga \(instance.id) is \(instance.status) again, at \(instance.step?.rawValue ?? "-")")
        }
    }
}

/// Prints rows under a header, in columns as wide as their widest cell.
func printTable(_ header: [String], _ rows: [[String]]) {
    let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
    for row in [header] + rows {
        print(row.enumerated().map { column, cell in
            column == row.count - 1 ? cell : cell.padding(toLength: widths[column], withPad: " ", startingAt: 0)
        }.joined(separator: "  "))
    }
}
