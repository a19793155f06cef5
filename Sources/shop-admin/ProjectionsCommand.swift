import ArgumentParser
import EventStore
import Foundation
import OrderHistory
import PaymentLedger
import ProductListing
import Projections
import SalesSummary
import Synchronization

/// Every view of the shop, with the context whose events feed it.
enum Views {
    static let all: [(context: Context, projection: any Projection)] = [
        (.catalog, ProductListing()),
        (.ordering, OrderHistory()),
        (.ordering, SalesSummary()),
        (.billing, PaymentLedger()),
    ]

    static func named(_ names: [String]) throws -> [(context: Context, projection: any Projection)] {
        try names.map { name in
            guard let view = all.first(where: { $0.projection.name == name }) else {
                throw ValidationError("no view named '\(name)': the views are \(all.map(\.projection.name).joined(separator: ", "))")
            }
            return view
        }
    }
}

/// Where the views live: the folders shop-server uses.
struct ViewOptions: ParsableArguments {
    @Option(help: "The folder holding each service's views (default: $SHOP_VIEWS_DIR, else .shop/views).")
    var views: String?

    func directory(_ context: Context) -> URL {
        URL(fileURLWithPath: views ?? ProcessInfo.processInfo.environment["SHOP_VIEWS_DIR"] ?? ".shop/views", isDirectory: true)
            .appendingPathComponent(context.rawValue, isDirectory: true)
    }

    func exists(_ context: Context, _ projection: any Projection) -> Bool {
        FileManager.default.fileExists(atPath: directory(context).appendingPathComponent("\(projection.name)/current").path)
    }
}

struct ProjectionsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "projections",
        abstract: "Inspect, rebuild and verify the SQLite views.",
        subcommands: [List.self, Status.self, Rebuild.self, Verify.self]
    )

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the views.")
        func run() {
            print("VIEW".padding(toLength: 26, withPad: " ", startingAt: 0) + "CONTEXT   VERSION")
            for (context, projection) in Views.all {
                print(projection.name.padding(toLength: 26, withPad: " ", startingAt: 0)
                      + context.rawValue.padding(toLength: 10, withPad: " ", startingAt: 0) + "\(projection.version)")
            }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Each view's position and lag (a running service reports its live rate at GET /admin/views).")
        @OptionGroup var options: ViewOptions

        func run() async throws {
            let logger = makeLogger("shop-admin")
            print("VIEW                      GENERATION  POSITION        LAG EVENTS  LAG SECONDS  NOTE")
            for context in Context.allCases {
                let views = Views.all.filter { $0.context == context }
                let url = try context.databaseURL()
                let options = options
                let lines = try await withEventStore(url, logger: logger) { store in
                    var lines: [String] = []
                    for (_, projection) in views {
                        let name = projection.name.padding(toLength: 26, withPad: " ", startingAt: 0)
                        guard options.exists(context, projection) else { lines.append(name + "(not built yet: its service builds it)"); continue }
                        let projector = try Projector(projection, store: store, directory: options.directory(context), logger: logger)
                        let lag = try await projector.lag()
                        let version = try await projector.read { try Int.fetchOne($0, sql: "SELECT version FROM projection_state") }
                        lines.append(name + "\(projector.generation)".padding(toLength: 12, withPad: " ", startingAt: 0)
                            + projector.position.description.padding(toLength: 16, withPad: " ", startingAt: 0)
                            + "\(lag.events)".padding(toLength: 12, withPad: " ", startingAt: 0)
                            + String(format: "%.1f", lag.seconds).padding(toLength: 13, withPad: " ", startingAt: 0)
                            + (version == projection.version ? "" : "version \(version ?? 0), code has \(projection.version): rebuilt when its service starts"))
                    }
                    return lines
                }
                lines.forEach { print($0) }
            }
        }
    }

    struct Rebuild: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Rebuild views from the first event while the old files serve, then swap them in.",
            discussion: """
                With --until and --output, build one view as it was at a position into a file of its own instead \
                (nothing is swapped).
                """)
        @OptionGroup var options: ViewOptions
        @Argument(help: "The views to rebuild.") var names: [String] = []
        @Flag(help: "Rebuild every view.") var all = false
        @Option(help: "With --output: build up to this position (as printed by status, or a command's answer).") var until: String?
        @Option(help: "With --until: the file to build into.") var output: String?

        func validate() throws {
            if all == !names.isEmpty { throw ValidationError("name the views to rebuild, or say --all") }
            if (until == nil) != (output == nil) { throw ValidationError("--until and --output go together") }
            if until != nil && names.count != 1 { throw ValidationError("--until builds one view: name exactly one") }
            if let until, Position(until) == nil { throw ValidationError("--until: '\(until)' is not a position such as 7391-1204") }
        }

        func run() async throws {
            let logger = makeLogger("shop-admin")
            let views = all ? Views.all : try Views.named(names)
            for (context, projection) in views {
                let url = try context.databaseURL()
                let directory = options.directory(context)
                let (until, output) = (self.until.flatMap(Position.init), self.output)
                try await withEventStore(url, logger: logger) { store in
                    let projector = try Projector(projection, store: store, directory: directory, logger: logger)
                    let bar = ProgressBar(name: projection.name)
                    do {
                        if let until, let output {
                            let reached = try await projector.build(until: until, output: URL(fileURLWithPath: output), progress: bar.report)
                            bar.finish("built \(projection.name) as at \(reached) into \(output)")
                        } else {
                            let result = try await projector.rebuild(progress: bar.report)
                            let rate = result.elapsed.seconds > 0 ? Double(result.events) / result.elapsed.seconds : 0
                            bar.finish("rebuilt \(projection.name): generation \(result.generation), \(result.events) events in "
                                       + String(format: "%.1f s (%.0f/s)", result.elapsed.seconds, rate) + ", swapped in")
                        }
                    } catch let error as ViewError {
                        bar.finish(nil)
                        throw Failure("\(projection.name): \(error)")
                    }
                }
            }
        }
    }

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Rebuild a view into a scratch file and compare it with the live one; exit 1 if they differ, or if the live one does not reach its store's head.")
        @OptionGroup var options: ViewOptions
        @Argument(help: "The view to verify.") var name: String
        @Option(name: .customLong("catch-up"), help: "Seconds the view may take to reach its store's head before it counts as stalled.")
        var catchUp: Double = 10

        func run() async throws {
            let logger = makeLogger("shop-admin")
            let (context, projection) = try Views.named([name])[0]
            guard options.exists(context, projection) else { throw Failure("\(name) is not built yet: its service builds it") }
            guard catchUp.isFinite, (0...3600).contains(catchUp) else { throw ValidationError("--catch-up is 0 to 3600 seconds") }
            let url = try context.databaseURL()
            let directory = options.directory(context)
            let (verdict, behind) = try await withEventStore(url, logger: logger) { store in
                let projector = try Projector(projection, store: store, directory: directory, logger: logger)
                // Its service follows the store: give the view a moment to reach what is committed now.
                let head = try await store.headPosition()
                let deadline = ContinuousClock.now + .milliseconds(Int(catchUp * 1000))
                var position = try await projector.servingPosition()
                while position < head, ContinuousClock.now < deadline {
                    try await Task.sleep(for: .milliseconds(100))  // another process writes the file: nothing to await
                    position = try await projector.servingPosition()
                }
                let verdict = try await projector.verify()
                return (verdict, position < head ? try await store.backlog(after: position) : nil)
            }
            if verdict.matches {
                print("\(name) matches a rebuild at \(verdict.position) (sha256 \(verdict.live.prefix(16))…)")
            } else {
                print("\(name) DIFFERS from a rebuild at \(verdict.position): live sha256 \(verdict.live.prefix(16))…, rebuilt \(verdict.rebuilt.prefix(16))…")
            }
            if let behind {
                let age = behind.oldest.map { " (the oldest recorded \(Int(Date().timeIntervalSince($0))) s ago)" } ?? ""
                print("\(name) is STALLED: \(behind.events) events behind its store's head\(age), after waiting \(catchUp) s for it to catch up")
            }
            if !verdict.matches || behind != nil { throw ExitCode.failure }
        }
    }
}

/// Progress on a terminal: a bar with events per second and time left; elsewhere, a line every few seconds.
final class ProgressBar: Sendable {
    let name: String
    let terminal = isatty(STDOUT_FILENO) == 1
    private let lastLine = Mutex(ContinuousClock.now - .seconds(60))

    init(name: String) { self.name = name }

    var report: @Sendable (Projector.RebuildProgress) -> Void {
        { [self] progress in show(progress) }
    }

    func show(_ progress: Projector.RebuildProgress) {
        let seconds = progress.elapsed.seconds
        let rate = seconds > 0 ? Double(progress.events) / seconds : 0
        let total = max(progress.total, progress.events, 1)
        let fraction = Double(progress.events) / Double(total)
        let left = rate > 0 ? Double(total - progress.events) / rate : 0
        let numbers = "\(progress.events)/\(total) events  \(Int(rate))/s  ETA \(Int(left.rounded()))s"
        if terminal {
            let width = 30, filled = Int(fraction * Double(width))
            let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
            FileHandle.standardOutput.write(Data("\r\(name) [\(bar)] \(Int(fraction * 100))%  \(numbers)\u{1B}[K".utf8))
        } else {
            let due = lastLine.withLock { last in
                guard ContinuousClock.now - last >= .seconds(2) else { return false }
                last = ContinuousClock.now
                return true
            }
            if due { print("\(name): \(Int(fraction * 100))%  \(numbers)") }
        }
    }

    func finish(_ message: String?) {
        if terminal { FileHandle.standardOutput.write(Data("\r\u{1B}[K".utf8)) }
        if let message { print(message) }
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}
