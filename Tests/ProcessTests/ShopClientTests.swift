import AsyncHTTPClient
import EventStore
import Foundation
import NIOCore
import TestSupport
import Testing

/// Runs `executable`; its exit status, standard output and standard error. Reads happen on threads of their
/// own, and the wait does not block one of Swift concurrency's threads.
func runProcess(_ executable: URL, _ arguments: [String], environment: [String: String]) async throws -> (status: Int32, output: String, errors: String) {
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    process.environment = environment
    process.standardInput = FileHandle.nullDevice
    let (output, errors) = (Pipe(), Pipe())
    process.standardOutput = output
    process.standardError = errors
    try process.run()
    func drain(_ pipe: Pipe) async -> String {
        await withCheckedContinuation { continuation in
            Thread.detachNewThread {
                let data = pipe.fileHandleForReading.readDataToEndOfFile()
                try? pipe.fileHandleForReading.close()  // at once: Foundation's Process keeps its pipes open otherwise
                continuation.resume(returning: String(decoding: data, as: UTF8.self))
            }
        }
    }
    async let read = drain(output), readErrors = drain(errors)
    let (text, errorText) = await (read, readErrors)
    await exited(process)
    return (process.terminationStatus, text, errorText)
}

/// The shop brought up by `bin/shop-up --detach` on ports of its own, with its databases in the test
/// PostgreSQL, the executables of this build, and a settings folder of its own; `bin/shop-down` afterwards.
struct LocalShop: Sendable {
    let root = TestDatabase.repositoryRoot
    let environment: [String: String]
    let run: URL
    let bffPort: Int

    init() async throws {
        let run = FileManager.default.temporaryDirectory.appendingPathComponent("shop-up-\(UUID())")
        var environment = ProcessInfo.processInfo.environment
        for context in ["catalog", "ordering", "billing"] {
            environment["SHOP_\(context.uppercased())_DATABASE_URL"] = try await TestDatabase.create(migrated: false).withPassword
        }
        let ports = (0..<5).map { _ in freePort() }
        environment.merge([
            "SHOP_BIN_DIR": try shopServerBinary().deletingLastPathComponent().path,
            "SHOP_RUN_DIR": run.path,
            "SHOP_BFF_PORT": "\(ports[0])", "SHOP_CATALOG_PORT": "\(ports[1])", "SHOP_ORDERING_PORT": "\(ports[2])", "SHOP_BILLING_PORT": "\(ports[3])",
            "SHOP_PROVIDER_PORT": "\(ports[4])",
            "SHOP_TOKEN_SECRET": "a-process-test-secret-long-enough-for-hs256", "SHOP_SERVICE_SECRET": TestSecrets.serviceText,
            // A burst larger than the whole test needs, refilled hardly at all (one request per 100 s): the rate-limit
            // case drains one client, and the client started after it (slow under load) must still find it drained.
            "SHOP_BFF_RATE": "0.01", "SHOP_BFF_BURST": "200",
            "XDG_CONFIG_HOME": run.appendingPathComponent("config").path,
            "SHOP_URL": "http://127.0.0.1:\(ports[0])",
            "NO_COLOR": "1",
        ]) { $1 }
        environment.removeValue(forKey: "SHOP_TOKEN")
        self.environment = environment
        self.run = run
        bffPort = ports[0]
    }

    func script(_ name: String, _ arguments: [String] = []) async throws -> (status: Int32, output: String, errors: String) {
        try await runProcess(root.appendingPathComponent("bin/\(name)"), arguments, environment: environment)
    }

    @discardableResult
    func shop(_ arguments: String..., environment extra: [String: String] = [:]) async throws -> (status: Int32, output: String, errors: String) {
        try await shop(arguments, environment: extra)
    }

    @discardableResult
    func shop(_ arguments: [String], environment extra: [String: String] = [:]) async throws -> (status: Int32, output: String, errors: String) {
        try await runProcess(URL(fileURLWithPath: environment["SHOP_BIN_DIR"]!).appendingPathComponent("shop"), arguments,
                             environment: environment.merging(extra) { $1 })
    }

    var admin: URL { URL(fileURLWithPath: environment["SHOP_BIN_DIR"]!).appendingPathComponent("shop-admin") }

    /// `shop-admin orders trace ID --json`, parsed.
    func trace(_ order: String) async throws -> [[String: Any]] {
        let result = try await runProcess(admin, ["orders", "trace", order, "--json"], environment: environment)
        #expect(result.status == 0, "\(result)")
        return result.output.split(separator: "\n").compactMap { parsed(String($0)) }
    }

    /// The pids bin/shop-up recorded.
    func pids() -> [Int32] {
        ["catalog", "ordering", "payment-provider", "billing", "bff"].compactMap { service in
            (try? String(contentsOf: run.appendingPathComponent("pids/\(service).pid"), encoding: .utf8))
                .flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        }
    }
}

/// A command's JSON output, parsed.
func parsed(_ output: String) -> [String: Any]? { try? JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any] }

@Suite("The one-command shop and the shop client, with real processes")
struct ShopClientTests {
    @Test(.timeLimit(.minutes(5)))
    func shopUpBringsTheShopUpTheClientShopsAndShopDownLeavesNothingRunning() async throws {
        let shop = try await LocalShop()
        let up = try await shop.script("shop-up", ["--detach"])
        var pids = shop.pids()
        defer { for pid in pids { kill(pid, SIGKILL) } }  // whatever happened
        #expect(up.status == 0, "bin/shop-up: \(up.output) \(up.errors)")
        #expect(up.output.contains("The shop is up") && up.output.contains("bin/shop login") && up.output.contains("In a browser: http://127.0.0.1:"))
        #expect(pids.count == 5)  // Catalog, Ordering, the payment provider, Billing, the BFF
        let again = try await shop.script("shop-up", ["--detach"])
        #expect(again.status == 0 && again.output.contains("already running") && shop.pids() == pids, "\(again)")

        // Sign in, find a mug, buy it with a card that is approved.
        let login = try await shop.shop("login", "kim", "--json")
        #expect(login.status == 0 && parsed(login.output)?["subject"] as? String == "kim", "\(login)")
        let settings = shop.run.appendingPathComponent("config/shop/config.json")
        let mode = try FileManager.default.attributesOfItem(atPath: settings.path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        #expect(try await shop.shop("whoami").output.contains("kim (customer)"))
        let search = try await shop.shop("products", "search", "mug", "--json")
        let found = (parsed(search.output)?["products"] as? [[String: Any]])?.compactMap { $0["sku"] as? String } ?? []
        #expect(search.status == 0 && found.contains("MUG-001"), "\(search)")
        @Sendable func available() async throws -> Int? { parsed(try await shop.shop("products", "show", "MUG-001", "--json").output)?["available"] as? Int }
        let before = try #require(try await available())

        let added = try await shop.shop("cart", "add", "MUG-001", "--json")
        #expect(added.status == 0 && (parsed(added.output)?["items"] as? [Any])?.count == 1, "\(added)")
        let confirmed = try await shop.shop("checkout", "--json")
        let order = try #require(parsed(confirmed.output), "\(confirmed)")
        #expect(confirmed.status == 0 && order["status"] as? String == "confirmed", "\(confirmed)")

        // A declined card: rejected with the reason, exit code 6, and the stock it held released.
        try await shop.shop("cart", "add", "MUG-001", "2")
        let declined = try await shop.shop("checkout", "--card", "4000 0000 0000 0002", "--json")
        #expect(declined.status == 6 && parsed(declined.output)?["status"] as? String == "rejected", "\(declined)")
        #expect(parsed(declined.output)?["reason"] as? String == "payment declined: card declined" && declined.errors.contains("rejected"))
        // (Catalog's view of the stock follows its events; the listing may lag them by the BFF's second.)
        try await within(.seconds(20), "the stock released") {
            while try await available() != before - 1 { try await Task.sleep(for: .milliseconds(250)) }  // polling other processes
        }

        // Observability: each order's life across the three contexts, and the logs of every service sharing the
        // checkout's correlation and trace ids, with no token in them.
        let id = try #require(order["order"] as? String)
        let rejectedID = try #require(parsed(declined.output)?["order"] as? String)
        let confirmedTrace = try await shop.trace(id)
        #expect(confirmedTrace.filter { $0["kind"] as? String == "saga" }.compactMap { $0["what"] as? String }
                == ["reserve-stock #1", "authorise-payment #1", "commit-stock #1", "capture-payment #1"], "\(confirmedTrace)")
        let services = Set(confirmedTrace.compactMap { $0["service"] as? String })
        #expect(services == ["catalog", "ordering", "billing"], "events from every context: \(confirmedTrace)")
        let events = confirmedTrace.filter { $0["kind"] as? String == "event" }.compactMap { $0["what"] as? String }
        #expect(events.firstIndex(of: "ordering.order-placed")! < events.firstIndex(of: "catalog.stock-reserved")!)
        #expect(events.firstIndex(of: "billing.payment-authorised")! < events.firstIndex(of: "ordering.order-confirmed")!)
        #expect(events.firstIndex(of: "ordering.order-confirmed")! < events.firstIndex(of: "billing.payment-captured")!)
        let rejectedTrace = try await shop.trace(rejectedID)
        #expect(rejectedTrace.filter { $0["kind"] as? String == "saga" }.compactMap { ($0["what"] as? String)?.split(separator: " ").first.map(String.init) }
                == ["reserve-stock", "authorise-payment", "release-stock"], "\(rejectedTrace)")
        #expect(rejectedTrace.last { $0["kind"] as? String == "event" }?["what"] as? String == "ordering.order-rejected"
                || rejectedTrace.contains { $0["what"] as? String == "ordering.order-rejected" })
        let readable = try await runProcess(shop.admin, ["orders", "trace", id], environment: shop.environment)
        #expect(readable.status == 0 && readable.output.contains("capture-payment #1") && readable.output.contains("WAITED"), "\(readable)")
        let correlation = try #require(confirmedTrace.first?["correlationId"] as? String)
        let traceID = try #require(confirmedTrace.first?["traceId"] as? String)
        let sessionToken = try #require(parsed(login.output)?["token"] as? String)
        for service in ["bff", "ordering", "catalog", "billing"] {
            let log = try String(contentsOf: shop.run.appendingPathComponent("logs/\(service).log"), encoding: .utf8)
            let lines = log.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
            #expect(lines.contains { $0["correlation_id"] as? String == correlation && $0["trace_id"] as? String == traceID },
                    "\(service) logged nothing of the checkout \(correlation) / \(traceID)")
            #expect(lines.allSatisfy { $0["time"] != nil && $0["level"] != nil && $0["service"] as? String == service && $0["instance"] != nil })
            #expect(!log.contains(sessionToken) && !log.contains("Bearer"), "\(service)'s log holds a token")
        }

        // The orders, and a cancellation (the confirmed one is refunded).
        let list = try await shop.shop("orders", "list", "--json")
        #expect(list.status == 0 && (parsed(list.output)?["orders"] as? [Any]) != nil, "\(list)")
        let shown = try await shop.shop("orders", "show", id)
        #expect(shown.status == 0 && shown.output.contains("confirmed"))
        let cancelled = try await shop.shop("orders", "cancel", id, "--json")
        #expect(cancelled.status == 0 && parsed(cancelled.output)?["status"] as? String == "cancelled", "\(cancelled)")
        let watched = try await shop.shop("orders", "watch", id, "--json")
        #expect(watched.status == 0 && parsed(watched.output)?["status"] as? String == "cancelled", "\(watched)")
        for command in [["cart", "add", "MUG-001"], ["cart", "show"], ["cart", "set", "MUG-001", "3"], ["cart", "remove", "MUG-001"], ["cart", "clear"], ["products", "list"],
                        ["whoami"], ["logout"]] {
            let result = try await shop.shop(command + ["--json"])
            #expect(result.status == 0 && parsed(result.output) != nil, "\(command): \(result)")
        }

        // Every documented exit code, from the failure it documents.
        #expect(try await shop.shop("cart", "show").status == 3, "signed out")
        #expect(try await shop.shop("cart", "show", environment: ["SHOP_TOKEN": "not-a-token"]).status == 3)
        try await shop.shop("login", "kim")
        #expect(try await shop.shop("products", "show", "NOPE-404").status == 4)
        #expect(try await shop.shop("cart", "add", "NOPE-404").status == 4)
        #expect(try await shop.shop("orders", "show", "o-nobodys").status == 4)
        let empty = try await shop.shop("checkout")
        #expect(empty.status == 5 && empty.errors.hasPrefix("shop: ") && empty.errors.split(separator: "\n").count == 1, "\(empty)")
        #expect(try await shop.shop("cart", "add").status == 64)
        #expect(try await shop.shop("cart", "show", "--url", "ftp://nowhere").status == 1)
        #expect(try await shop.shop("products", "list", "--url", "http://127.0.0.1:\(freePort())").status == 8)
        // 9: a payment provider outage keeps the saga retrying past the client's patience.
        try await providerOutage(shop, ["authorise"])
        try await shop.shop("cart", "add", "MUG-001")
        let slow = try await shop.shop("checkout", "--timeout", "1")
        #expect(slow.status == 9 && slow.errors.contains("still processing"), "\(slow)")
        try await providerOutage(shop, [])

        // A terminal: the progress display during a checkout, colours, and a table with aligned columns.
        try await terminalSession(shop)
        // 7: a client that has used its burst.
        let flood = try await shop.shop("login", "flood", "--json")
        let token = try #require(parsed(flood.output)?["token"] as? String)
        for _ in 0..<300 {
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(shop.bffPort)/cli/v1/cart")
            request.headers.add(name: "Authorization", value: "Bearer \(token)")
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
            _ = try await response.body.collect(upTo: 1 << 20)
            if response.status == .tooManyRequests { break }
        }
        let limited = try await shop.shop("cart", "show", environment: ["SHOP_TOKEN": token])
        #expect(limited.status == 7 && limited.errors.contains("retry in"), "\(limited)")

        // Down, and nothing left running.
        let down = try await shop.script("shop-down")
        #expect(down.status == 0, "\(down)")
        for pid in pids { #expect(kill(pid, 0) != 0, "process \(pid) still runs") }
        #expect(await get(shop.bffPort, "/health/live") == nil)
        pids = []
    }

    func providerOutage(_ shop: LocalShop, _ calls: [String]) async throws {
        var request = HTTPClientRequest(url: "\(shop.environment["SHOP_PROVIDER_PORT"].map { "http://127.0.0.1:\($0)" }!)/simulator/outage")
        request.method = .PUT
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(data: try JSONSerialization.data(withJSONObject: ["calls": calls])))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
        _ = try await response.body.collect(upTo: 1 << 20)
        #expect(response.status == .ok)
    }

    /// `shop checkout` and `shop products list` in a tmux session: what the terminal received (every redraw), and
    /// the screen at the end.
    func terminalSession(_ shop: LocalShop) async throws {
        let folder = shop.run.appendingPathComponent("tmux")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        let shopBinary = URL(fileURLWithPath: shop.environment["SHOP_BIN_DIR"]!).appendingPathComponent("shop").path
        // Bounded waits (a minute each): for the recording to start, then for the screen to be read. Then the script
        // ends, its pane and session close, and the tmux server exits with them.
        let script = """
            for i in $(seq 1200); do [ -e '\(folder.path)/go' ] && break; sleep 0.05; done
            '\(shopBinary)' cart add MUG-001 >/dev/null
            '\(shopBinary)' checkout
            '\(shopBinary)' products list
            echo __done__
            for i in $(seq 1200); do [ -e '\(folder.path)/stop' ] && break; sleep 0.05; done
            """
        try script.write(to: folder.appendingPathComponent("session.sh"), atomically: true, encoding: .utf8)
        let session = "shop-test-\(UUID().uuidString.prefix(8))"
        let tmux = URL(fileURLWithPath: "/usr/bin/tmux")
        let environment = shop.environment.filter { $0.key != "NO_COLOR" && $0.key != "TMUX" }.merging(["TMUX_TMPDIR": folder.path]) { $1 }
        let forwarded = ["SHOP_URL", "XDG_CONFIG_HOME"].flatMap { ["-e", "\($0)=\(environment[$0]!)"] }
        // The tmux server it starts stays: it must hold none of this process's pipes or sockets (runProcess waits
        // for them to close, and Foundation's Process for its own socket).
        let detach = #"for fd in /proc/self/fd/*; do fd=${fd##*/}; [ "$fd" -gt 2 ] && eval "exec $fd>&-" 2>/dev/null; done; exec "$@" >/dev/null 2>&1"#
        let started = try await runProcess(URL(fileURLWithPath: "/bin/bash"), ["-c", detach, "detach", tmux.path, "new-session", "-d", "-s", session,
                                           "-x", "150", "-y", "50"] + forwarded + ["bash \(folder.path)/session.sh"], environment: environment)
        #expect(started.status == 0, "tmux: \(started)")
        defer {  // whatever happened: the session's script ends, and the server with it
            _ = FileManager.default.createFile(atPath: folder.appendingPathComponent("stop").path, contents: nil)
            _ = FileManager.default.createFile(atPath: folder.appendingPathComponent("go").path, contents: nil)
        }
        let raw = folder.appendingPathComponent("raw.log")
        #expect(try await runProcess(tmux, ["pipe-pane", "-t", session, "-o", "cat >> '\(raw.path)'"], environment: environment).status == 0)
        // The payment waits (authorisations fail, and are retried) until the progress line has been drawn, so that it
        // is seen whatever the saga's speed.
        try await providerOutage(shop, ["authorise"])
        _ = FileManager.default.createFile(atPath: folder.appendingPathComponent("go").path, contents: nil)
        try await within(.seconds(60), "the checkout's progress line") {
            while (try? String(contentsOf: raw, encoding: .utf8))?.contains("placed") != true {
                try await Task.sleep(for: .milliseconds(20))  // another process's output
            }
        }
        try await providerOutage(shop, [])
        let screen = try await within(.seconds(60), "the terminal session to finish") {
            while true {
                let captured = try await runProcess(tmux, ["capture-pane", "-p", "-t", session], environment: environment).output
                if captured.contains("__done__") { return captured }
            }
        }
        _ = FileManager.default.createFile(atPath: folder.appendingPathComponent("stop").path, contents: nil)
        try await within(.seconds(30), "the tmux session to end") {
            while try await runProcess(tmux, ["has-session", "-t", session], environment: environment).status == 0 {
                try await Task.sleep(for: .milliseconds(50))  // another process's state
            }
        }
        let received = try String(contentsOf: raw, encoding: .utf8)
        #expect(received.contains("\r\u{1B}[2K") && received.contains("placed"), "the progress line redraws itself: \(received.debugDescription)")
        #expect(received.contains("\u{1B}[32mconfirmed"), "the outcome in green on a terminal")

        let lines = screen.split(separator: "\n").map(String.init)
        let header = try #require(lines.first { $0.hasPrefix("SKU") && $0.contains("AVAILABLE") }, "\(screen)")
        let rows = lines.drop { $0 != header }.dropFirst().prefix { $0.range(of: #"^[A-Z]+-\d{3} "#, options: .regularExpression) != nil }
        #expect(rows.count >= 10, "\(screen)")
        let name = try #require(header.range(of: "NAME")).lowerBound.utf16Offset(in: header)
        let end = header.count
        for row in rows {
            #expect(row.utf16.count == end && row.dropFirst(name - 1).first == " " && row.dropFirst(name).first != " ",
                    "aligned with the header: \(row)")
        }
    }
}

@Suite("bin/shop-up interrupted, with real processes")
struct ShopUpInterruptTests {
    /// Ctrl-C (or SIGTERM) while the shop starts stops whatever bin/shop-up had started: it used to set its trap only once the
    /// shop was ready, and left the services running.
    @Test(.timeLimit(.minutes(3)))
    func anInterruptDuringStartUpLeavesNothingRunning() async throws {
        let shop = try await LocalShop()
        let process = Process()
        // Started as a terminal starts it: the test process hands its children SIGINT and SIGTERM blocked or ignored,
        // and a script cannot trap a signal it was started ignoring (bash's rule).
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", """
            import os, signal, sys
            signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT, signal.SIGTERM])
            signal.signal(signal.SIGINT, signal.SIG_DFL); signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.execv(sys.argv[1], sys.argv[1:])
            """, shop.root.appendingPathComponent("bin/shop-up").path]
        process.environment = shop.environment
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        // Once the first services are started (their pids recorded), and before the shop is ready.
        try await within(.seconds(60), "bin/shop-up to start services") {
            while shop.pids().count < 2 {
                guard process.isRunning else { throw TestSetupError("bin/shop-up ended before it started two services") }
                try await Task.sleep(for: .milliseconds(10))  // another process: nothing to await
            }
        }
        let started = shop.pids()
        process.terminate()  // SIGTERM: a process started in the background ignores SIGINT (Ctrl-C reaches it in a terminal)
        try await within(.seconds(60), "bin/shop-up to stop") { await exited(process) }
        #expect(process.terminationStatus == 130)
        for pid in started { #expect(kill(pid, 0) != 0, "process \(pid) still runs") }
        #expect(shop.pids().isEmpty)
    }
}
