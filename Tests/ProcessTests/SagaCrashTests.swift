import AsyncHTTPClient
import EventStore
import Foundation
import NIOCore
import NIOFoundationCompat
import TestSupport
import Testing

/// A command to a service over HTTP, with a fresh Idempotency-Key; the answer's status and JSON body.
@discardableResult
func post(_ port: Int, _ path: String, _ json: String? = nil) async throws -> (status: Int, body: [String: Any]) {
    var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
    request.method = .POST
    request.headers.add(name: "Idempotency-Key", value: UUID().uuidString)
    request.headers.add(name: "Content-Type", value: "application/json")
    if let authorization = try await ServicePorts.authorization(port) { request.headers.add(name: "Authorization", value: authorization) }
    if let json { request.body = .bytes(ByteBuffer(string: json)) }
    let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
    let body = try await response.body.collect(upTo: 1 << 20)
    return (Int(response.status.code), (try? JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any]) ?? [:])
}

/// Waits until a service answers its health check.
func waitUntilUp(_ process: Process, port: Int) async throws {
    try await within(.seconds(60), "the service on port \(port) to answer") {
        while await get(port, "/health/ready")?["status"] as? String != "ready" {
            guard process.isRunning else { throw TestSetupError("the service on port \(port) exited with \(process.terminationStatus)") }
            try await Task.sleep(for: .milliseconds(20))  // polling another process, which cannot notify us
        }
    }
}

@Suite("Saga crash recovery, with real processes")
struct SagaCrashTests {
    /// kill -9 of Ordering at each step of the saga (the process kills itself with SIGKILL the moment the step
    /// was done by the other service and before it recorded the result), then a restart: every order ends
    /// confirmed and completed, with exactly one authorisation and one capture at the provider.
    @Test(.timeLimit(.minutes(5)))
    func orderingKilledAtEachStepResumesEverySagaWithoutChargingTwice() async throws {
        let catalogDatabase = try await TestDatabase.create(migrated: false)
        let billingDatabase = try await TestDatabase.create(migrated: false)
        let orderingDatabase = try await TestDatabase.create(migrated: false)
        let (catalogPort, billingPort, providerPort) = (freePort(), freePort(), freePort())
        let catalog = try startService("catalog", catalogDatabase, views: scratchViews(), port: catalogPort)
        let provider = try startProvider(port: providerPort, file: scratchViews().appendingPathComponent("provider.sqlite"))
        let billing = try startService("billing", billingDatabase, views: scratchViews(), port: billingPort,
                                       environment: ["SHOP_PROVIDER_URL": "http://127.0.0.1:\(providerPort)"])
        defer { for process in [catalog, provider, billing] where process.isRunning { process.terminate() } }
        try await waitUntilUp(catalog, port: catalogPort)
        try await waitUntilUp(provider, port: providerPort)
        try await waitUntilUp(billing, port: billingPort)
        #expect(try await post(catalogPort, "/products", #"{"sku":"MUG-001","name":"Mug","price":{"amount":1250,"currency":"EUR"}}"#).status == 201)
        #expect(try await post(catalogPort, "/products/MUG-001/stock", #"{"quantity":100}"#).status == 200)

        let orderingViews = scratchViews()
        let environment = ["SHOP_CATALOG_URL": "http://127.0.0.1:\(catalogPort)", "SHOP_BILLING_URL": "http://127.0.0.1:\(billingPort)"]
        for (index, point) in ["after-reserve-stock", "after-authorise-payment", "after-commit-stock", "after-capture-payment"].enumerated() {
            let port = freePort()
            let doomed = try startService("ordering", orderingDatabase, views: orderingViews, port: port,
                                          environment: environment.merging(["SHOP_CRASH_AT": point]) { $1 })
            try await waitUntilUp(doomed, port: port)
            let customer = "crash-\(index)"
            try await within(.seconds(20), "Ordering's copy of the catalog") {
                while try await post(port, "/carts/\(customer)/items", #"{"sku":"MUG-001","quantity":2}"#).status != 200 {
                    try await Task.sleep(for: .milliseconds(20))  // polling another process, which cannot notify us
                }
            }
            // The process may die before its answer to the checkout is out: the order's id is chosen here.
            let order = "crash-order-\(index)"
            _ = try? await post(port, "/carts/\(customer)/checkout", #"{"order":"\#(order)","card":"4242424242424242"}"#)
            try await within(.seconds(30), "Ordering to die \(point)") { await exited(doomed) }
            #expect(doomed.terminationReason == .uncaughtSignal && doomed.terminationStatus == SIGKILL, "at \(point)")

            // Restarted, it resumes the saga where it stopped.
            let restartedPort = freePort()
            let restarted = try startService("ordering", orderingDatabase, views: orderingViews, port: restartedPort, environment: environment)
            defer { if restarted.isRunning { restarted.terminate() } }
            try await waitUntilUp(restarted, port: restartedPort)
            let outcome = await get(restartedPort, "/orders/\(order)?wait=30")
            #expect(outcome?["status"] as? String == "confirmed", "after a crash \(point): \(outcome ?? [:])")
            let saga = try await within(.seconds(30), "the saga to complete") {
                while true {
                    if let status = await get(restartedPort, "/admin/sagas/\(order)")?["status"] as? String, status != "running" { return status }
                    try await Task.sleep(for: .milliseconds(20))  // polling another process, which cannot notify us
                }
            }
            let detail = await get(restartedPort, "/admin/sagas/\(order)") ?? [:]
            #expect(saga == "completed", "after a crash \(point): \(detail)")
            let ledger = await get(providerPort, "/simulator/ledger") as? [String: [String: Int]]
            #expect(ledger?["authorisations"]?[order] == 1 && ledger?["captures"]?[order] == 1, "after a crash \(point): \(ledger ?? [:])")
        }
        let stock = await get(catalogPort, "/products/MUG-001")?["stock"] as? [String: Any]
        #expect(stock?["onHand"] as? Int == 92 && stock?["reserved"] as? Int == 0)
    }
}
