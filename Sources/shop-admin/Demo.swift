import ArgumentParser
import EventSourcing
import EventStore
import Foundation

/// A walk through the event store, for the README's first command (bin/demo).
struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the event store at work on a scratch database: the decider loop, a write conflict, an idempotent retry, a live subscription.")

    @Option(help: "A scratch database's PostgreSQL URL; it gets the event store schema.")
    var databaseURL: String

    func run() async throws {
        let logger = makeLogger("shop-admin")
        let url: DatabaseURL
        do { url = try DatabaseURL(databaseURL) } catch { throw ValidationError("--database-url: \(error)") }
        let migrations = try Migrator.defaultDirectory()
        try await Migrator(directory: migrations, folders: ["eventstore"]).migrate(url, logger: logger)

        try await withEventStore(url, logger: logger) { store in
            let stream = try StreamName(category: "tally", id: String(UUID().uuidString.prefix(8)).lowercased())
            let start = try await store.headPosition()
            print("1. A subscriber follows every event committed after \(start), live.")
            let subscriber = Task {
                var seen = 0
                for try await batch in store.subscribeToAll(from: start) {
                    for event in batch where event.stream == stream {
                        print("   [subscriber] \(event.position)  \(event.stream)@\(event.streamVersion)  \(event.type)  \(String(decoding: event.payload, as: UTF8.self))")
                        seen += 1
                    }
                    if seen == 4 { return }
                }
            }

            print("2. The decider loop: read \(stream), fold, decide, append with the version read.")
            let tally = CommandHandler<Tally>(store: store, codec: Tally.codec)
            for points in [3, 4] {
                let result = try await tally.handle(.add(points), on: stream)
                print("   add \(points): total \(result.state), stream at version \(result.streamVersion), position \(result.position!)")
            }
            do {
                _ = try await tally.handle(.add(-100), on: stream)
            } catch let refusal as TallyError {
                print("   add -100: refused by the decider (\(refusal)), nothing written")
            }

            print("3. Two writers that both read version 2 race to append: one wins, the other gets a conflict.")
            let event = try NewEvent(Tally.Event.added(Tally.Added(points: 1)), codec: Tally.codec)
            let writers = try await withThrowingTaskGroup(of: String.self) { group in
                for name in ["writer A", "writer B"] {
                    group.addTask {
                        do {
                            let result = try await store.append([NewEvent(type: event.type, payload: event.payload)], to: stream, expectedVersion: .exact(2))
                            return "   \(name): appended, stream at version \(result.streamVersion)"
                        } catch let conflict as WrongExpectedVersion {
                            return "   \(name): conflict: \(conflict)"
                        }
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            writers.sorted().forEach { print($0) }

            print("4. A retried append (same event ids) is stored once and answers as the first time.")
            let batch = [event]
            let first = try await store.append(batch, to: stream, expectedVersion: .any)
            let again = try await store.append(batch, to: stream, expectedVersion: .any)
            print("   first: version \(first.streamVersion), position \(first.position); retry: version \(again.streamVersion), position \(again.position), duplicate: \(again.wasDuplicate)")

            print("5. The stream, read back:")
            for event in try await store.readStream(stream) {
                print("   \(event.streamVersion)  \(event.type) v\(event.schemaVersion)  \(String(decoding: event.payload, as: UTF8.self))")
            }
            try await subscriber.value
            print("Done. To follow an event store live: .build/debug/shop-admin events tail --follow --database-url URL (bin/db url lists them).")
        }
    }
}

/// The smallest decider: a running total that never goes negative.
enum Tally: Decider {
    enum Command: Sendable { case add(Int) }
    enum Event: Sendable { case added(Added) }
    struct Added: Codable, Sendable { var points: Int }
    typealias State = Int

    static let initialState = 0

    static func decide(_ command: Command, _ total: Int) throws(TallyError) -> [Event] {
        switch command {
        case .add(let points):
            guard total + points >= 0 else { throw .wouldGoNegative(total: total, points: points) }
            return [.added(Added(points: points))]
        }
    }

    static func evolve(_ total: Int, _ event: Event) -> Int {
        switch event {
        case .added(let added): total + added.points
        }
    }

    static let codec = EventCodec<Event>(
        .event("demo.points-added", embed: Event.added) { if case .added(let added) = $0 { added } else { nil } }
    )
}

enum TallyError: Error, CustomStringConvertible {
    case wouldGoNegative(total: Int, points: Int)
    var description: String {
        switch self {
        case .wouldGoNegative(let total, let points): "a total of \(total) plus \(points) would go below zero"
        }
    }
}
