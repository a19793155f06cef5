import EventStore
import Foundation
import PostgresNIO
import Synchronization
import TestSupport
import Testing

/// What a service's process writes to its standard error, gathered as it comes.
final class Gathered: Sendable {
    let pipe = Pipe()
    private let text = Mutex("")

    init() {
        pipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
            let data = handle.availableData
            self?.text.withLock { $0 += String(decoding: data, as: UTF8.self) }
        }
    }

    var contents: String { text.withLock { $0 } }

    /// Until what it gathered contains `needle`.
    func wait(for needle: String, within limit: Duration) async throws {
        try await within(limit, "'\(needle)' on the service's standard error") {
            while !self.contents.contains(needle) { try await Task.sleep(for: .milliseconds(20)) }
        }
    }
}

@Suite("A service starting while its database is not there")
struct StartupTests {
    /// The database does not answer yet (restarting, or not created): the service waits, says so, and serves once it does.
    @Test(.timeLimit(.minutes(2)))
    func aServiceWaitsForItsDatabaseAndServesOnceItAnswers() async throws {
        let server = try TestDatabase.serverURL()
        let name = "late_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(12)
        let port = freePort(), errors = Gathered()
        let process = try startService("catalog", server.with(database: String(name)), views: scratchViews(), port: port,
                                       environment: ["SHOP_LOG_LEVEL": "warning"], arguments: ["--database-wait", "60"], errors: errors.pipe)
        defer { if process.isRunning { process.terminate() } }
        try await errors.wait(for: "waiting for the database", within: .seconds(30))
        #expect(process.isRunning)
        try await TestDatabase.withConnection(server) { connection in
            try await connection.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: TestDatabase.logger)
        }
        try await within(.seconds(60), "the service to serve once its database is there") {
            while await get(port, "/health/ready")?["status"] as? String != "ready" { try await Task.sleep(for: .milliseconds(50)) }
        }
    }

    /// A database that never answers: the service gives up after its wait, with one line that says why.
    @Test(.timeLimit(.minutes(1)))
    func aServiceGivesUpAfterItsWaitWithAClearMessage() async throws {
        let nowhere = try DatabaseURL("postgres://shop:secret@127.0.0.1:\(freePort())/catalog")
        let errors = Gathered()
        let started = ContinuousClock.now
        let process = try startService("catalog", nowhere, views: scratchViews(), port: freePort(),
                                       environment: ["SHOP_LOG_LEVEL": "warning"], arguments: ["--database-wait", "1"], errors: errors.pipe)
        try await within(.seconds(30), "the service to give up") {
            while process.isRunning { try await Task.sleep(for: .milliseconds(20)) }
        }
        #expect(process.terminationStatus != 0)
        #expect(ContinuousClock.now - started >= .seconds(1), "it waited")
        try await errors.wait(for: "(waited 1 s)", within: .seconds(5))
        #expect(errors.contents.contains("catalog: cannot reach its database") && errors.contents.contains("waiting for the database"))
    }
}
