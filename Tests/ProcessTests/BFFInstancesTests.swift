import AsyncHTTPClient
import Foundation
import NIOCore
import TestSupport
import Testing

@Suite("The BFF in front of two instances, with real processes")
struct BFFInstancesTests {
    /// Two Catalog instances on one database behind `shop-server bff`: one is killed with SIGKILL and every
    /// request still succeeds; it is restarted, then the other is killed, and requests succeed again: the
    /// returning instance is back in the rotation and takes the traffic.
    @Test(.timeLimit(.minutes(3)))
    func requestsKeepSucceedingWhenAnInstanceDiesAndTheReturningInstanceGetsTrafficAgain() async throws {
        let database = try await TestDatabase.create(migrated: false)
        let views = (scratchViews(), scratchViews())
        let (a, b, bffPort) = (freePort(), freePort(), freePort())
        var first = try startService("catalog", database, views: views.0, port: a)
        let second = try startService("catalog", database, views: views.1, port: b)
        let bff = Process()
        bff.executableURL = try shopServerBinary()
        bff.arguments = ["bff", "--port", "\(bffPort)", "--catalog-urls", "http://127.0.0.1:\(a),http://127.0.0.1:\(b)",
                         "--ordering-urls", "http://127.0.0.1:\(freePort())", "--billing-urls", "http://127.0.0.1:\(freePort())",
                         "--cache-ms", "0"]  // every listing goes to an instance
        bff.environment = ProcessInfo.processInfo.environment.merging(
            ["SHOP_TOKEN_SECRET": "a-process-test-secret-long-enough-for-hs256", "SHOP_SERVICE_SECRET": TestSecrets.serviceText,
             "SHOP_LOG_LEVEL": "critical"]) { $1 }
        bff.standardOutput = FileHandle.nullDevice
        bff.standardError = FileHandle.nullDevice
        try bff.run()
        defer { for process in [first, second, bff] where process.isRunning { process.terminate() } }
        try await waitUntilUp(first, port: a)
        try await waitUntilUp(second, port: b)
        #expect(try await post(a, "/products", #"{"sku":"MUG-001","name":"Mug","price":{"amount":1250,"currency":"EUR"}}"#).status == 201)
        try await within(.seconds(30), "the BFF to answer") {
            while await get(bffPort, "/health/live") == nil { try await Task.sleep(for: .milliseconds(20)) }  // polling another process
        }

        @Sendable func listing() async -> Int? {
            guard let response = try? await HTTPClient.shared.execute(HTTPClientRequest(url: "http://127.0.0.1:\(bffPort)/cli/v1/products"),
                                                                      timeout: .seconds(10)) else { return nil }
            _ = try? await response.body.collect(upTo: 1 << 20)
            return Int(response.status.code)
        }
        var statuses: [Int?] = []
        for _ in 0..<6 { statuses.append(await listing()) }
        #expect(statuses.allSatisfy { $0 == 200 }, "\(statuses)")

        kill(first.processIdentifier, SIGKILL)
        await exited(first)
        statuses = []
        for _ in 0..<20 { statuses.append(await listing()) }  // each within 10 s: a dead instance costs at most its connect timeout
        #expect(statuses.allSatisfy { $0 == 200 }, "with an instance dead: \(statuses)")

        // Back on its port: requests keep succeeding.
        first = try startService("catalog", database, views: views.0, port: a)
        try await waitUntilUp(first, port: a)
        statuses = []
        for _ in 0..<10 { statuses.append(await listing()) }
        #expect(statuses.allSatisfy { $0 == 200 }, "after the restart: \(statuses)")

        // The other one dies: the returned instance alone serves, once the health checks have put it back.
        kill(second.processIdentifier, SIGKILL)
        await exited(second)
        try await within(.seconds(15), "the restarted instance to serve") {
            while await listing() != 200 {}  // each call waits on the BFF; no sleep needed
        }
        statuses = []
        for _ in 0..<10 { statuses.append(await listing()) }
        #expect(statuses.allSatisfy { $0 == 200 }, "with only the restarted instance: \(statuses)")
    }
}
