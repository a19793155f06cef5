import AsyncHTTPClient
import Foundation
import NIOCore
import TestSupport
import Testing

@Suite("shop-admin sagas, as a process")
struct SagasCommandTests {
    @Test(.timeLimit(.minutes(3)))
    func listsShowsAndReDrivesAParkedSaga() async throws {
        let (catalogDatabase, billingDatabase, orderingDatabase) = (try await TestDatabase.create(migrated: false),
            try await TestDatabase.create(migrated: false), try await TestDatabase.create(migrated: false))
        let (catalogPort, billingPort, orderingPort, providerPort) = (freePort(), freePort(), freePort(), freePort())
        let catalog = try startService("catalog", catalogDatabase, views: scratchViews(), port: catalogPort)
        let provider = try startProvider(port: providerPort, file: scratchViews().appendingPathComponent("provider.sqlite"))
        let billing = try startService("billing", billingDatabase, views: scratchViews(), port: billingPort,
                                       environment: ["SHOP_PROVIDER_URL": "http://127.0.0.1:\(providerPort)"])
        let ordering = try startService("ordering", orderingDatabase, views: scratchViews(), port: orderingPort, environment: [
            "SHOP_CATALOG_URL": "http://127.0.0.1:\(catalogPort)", "SHOP_BILLING_URL": "http://127.0.0.1:\(billingPort)"])
        defer { for process in [catalog, provider, billing, ordering] where process.isRunning { process.terminate() } }
        for (process, port) in [(catalog, catalogPort), (provider, providerPort), (billing, billingPort), (ordering, orderingPort)] {
            try await waitUntilUp(process, port: port)
        }
        #expect(try await post(catalogPort, "/products", #"{"sku":"MUG-001","name":"Mug","price":{"amount":1250,"currency":"EUR"}}"#).status == 201)
        #expect(try await post(catalogPort, "/products/MUG-001/stock", #"{"quantity":10}"#).status == 200)

        // Captures fail at the provider: the saga confirms the order, then parks at the capture.
        var outage = HTTPClientRequest(url: "http://127.0.0.1:\(providerPort)/simulator/outage")
        outage.method = .PUT
        outage.headers.add(name: "Content-Type", value: "application/json")
        outage.body = .bytes(ByteBuffer(string: #"{"calls":["capture"]}"#))
        #expect(try await HTTPClient.shared.execute(outage, timeout: .seconds(5)).status == .ok)
        try await within(.seconds(20), "Ordering's copy of the catalog") {
            while try await post(orderingPort, "/carts/kim/items", #"{"sku":"MUG-001","quantity":1}"#).status != 200 {
                try await Task.sleep(for: .milliseconds(20))  // polling another process, which cannot notify us
            }
        }
        #expect(try await post(orderingPort, "/carts/kim/checkout", #"{"order":"order-7","card":"4242424242424242"}"#).status == 201)
        try await within(.seconds(60), "the saga to park") {
            while await get(orderingPort, "/admin/sagas/order-7")?["status"] as? String != "parked" {
                try await Task.sleep(for: .milliseconds(50))  // polling another process, which cannot notify us
            }
        }

        let environment = ["SHOP_ORDERING_DATABASE_URL": orderingDatabase.withPassword]
        let list = try await shopAdmin(["sagas", "list", "--state", "parked"], environment: environment)
        #expect(list.status == 0 && list.output.contains("1 parked") && list.output.contains("order-7"), "\(list.output)")
        let show = try await shopAdmin(["sagas", "show", "order-7"], environment: environment)
        #expect(show.status == 0, "\(show.output)")
        #expect(show.output.contains("saga order-7: parked at capture-payment"), "\(show.output)")
        #expect(show.output.components(separatedBy: "\n").filter { $0.contains("capture-payment") && $0.contains("failed") }.count == 6,
                "\(show.output)")
        #expect(show.output.contains("•••• 4242") && !show.output.contains("4242424242424242"))

        outage.body = .bytes(ByteBuffer(string: #"{"calls":[]}"#))
        #expect(try await HTTPClient.shared.execute(outage, timeout: .seconds(5)).status == .ok)
        let retry = try await shopAdmin(["sagas", "retry", "order-7"], environment: environment)
        #expect(retry.status == 0 && retry.output.contains("saga order-7 is running again, at capture-payment"), "\(retry.output)")
        try await within(.seconds(30), "the re-driven saga to complete") {
            while await get(orderingPort, "/admin/sagas/order-7")?["status"] as? String != "completed" {
                try await Task.sleep(for: .milliseconds(20))  // polling another process, which cannot notify us
            }
        }
        let ledger = await get(providerPort, "/simulator/ledger") as? [String: [String: Int]]
        #expect(ledger?["captures"]?["order-7"] == 1)

        // Bad input: one line, non-zero exit.
        let again = try await shopAdmin(["sagas", "retry", "order-7"], environment: environment)
        #expect(again.status == 1 && again.output.contains("is completed, not parked"), "\(again.output)")
        let unknown = try await shopAdmin(["sagas", "show", "nope"], environment: environment)
        #expect(unknown.status == 1 && unknown.output.contains("there is no saga 'nope'"), "\(unknown.output)")
        let badState = try await shopAdmin(["sagas", "list", "--state", "stuck"], environment: environment)
        #expect(badState.status != 0 && badState.output.contains("--state is one of"), "\(badState.output)")
    }
}
