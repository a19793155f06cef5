import ArgumentParser
import Essentials
import EventStore
import Foundation

struct Events: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Look into a context's event store.",
        subcommands: [Tail.self, Stream.self]
    )

    struct Tail: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print the store's events in commit order; with --follow, keep printing new ones as they commit.")

        @OptionGroup var database: DatabaseOptions

        @Option(help: "Start after this position (transaction-position, as printed).")
        var after: String?

        @Option(help: "Without --follow: only the last N events.")
        var last: Int = 20

        @Flag(help: "Keep following new events until interrupted.")
        var follow = false

        @Flag(help: "One JSON object per line.")
        var json = false

        func run() async throws {
            let logger = makeLogger("shop-admin")
            let start: Position
            if let after {
                guard let position = Position(after) else { throw ValidationError("--after: '\(after)' is not a position such as 7391-1204") }
                start = position
            } else {
                start = .start
            }
            let url = try database.url()
            let follow = follow, json = json, last = last, explicitStart = after != nil
            try await withEventStore(url, logger: logger) { store in
                if !follow {
                    var events: [RecordedEvent] = []
                    var position = start
                    while true {
                        let batch = try await store.readAll(after: position, limit: 1000)
                        guard let end = batch.last else { break }
                        events += batch
                        if !explicitStart && events.count > last { events.removeFirst(events.count - last) }
                        position = end.position
                    }
                    for event in events { print(format(event, json: json)) }
                    return
                }
                for try await batch in store.subscribeToAll(from: start) {
                    // Unbuffered, so that a pipe sees each event as it commits.
                    let lines = batch.map { format($0, json: json) + "\n" }.joined()
                    FileHandle.standardOutput.write(Data(escapingControls(lines).utf8))
                }
            }
        }
    }

    struct Stream: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print one stream's events, oldest first.")

        @OptionGroup var database: DatabaseOptions

        @Argument(help: "The stream, for example product-MUG-001.")
        var name: String

        @Flag(help: "One JSON object per line.")
        var json = false

        func run() async throws {
            let logger = makeLogger("shop-admin")
            let stream: StreamName
            do { stream = try StreamName(name) } catch { throw ValidationError("\(error)") }
            let url = try database.url()
            let json = json
            let events = try await withEventStore(url, logger: logger) { try await $0.readStream(stream) }
            if events.isEmpty { throw Failure("stream \(stream) has no events") }
            for event in events { print(format(event, json: json)) }
        }
    }
}

func format(_ event: RecordedEvent, json: Bool) -> String {
    let payload = String(decoding: event.payload, as: UTF8.self)
    if json {
        let metadata = (try? JSONEncoder().encode(event.metadata)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
        return """
            {"position":"\(event.position)","globalPosition":\(event.globalPosition),"stream":\(quoted(event.stream.rawValue)),\
            "version":\(event.streamVersion),"type":\(quoted(event.type)),"schemaVersion":\(event.schemaVersion),\
            "id":"\(event.id.uuidString.lowercased())","recordedAt":"\(event.recordedAt.formatted(.iso8601))",\
            "payload":\(payload),"metadata":\(metadata)}
            """
    }
    return "\(event.position)\t\(event.recordedAt.formatted(.iso8601))\t\(event.stream)@\(event.streamVersion)\t\(event.type) v\(event.schemaVersion)\t\(payload)"
}

private func quoted(_ text: String) -> String {
    String(decoding: (try? JSONEncoder().encode(text)) ?? Data("\"\"".utf8), as: UTF8.self)
}
