import Catalog
import EventStore
import Foundation
import GRDB
import SharedKernel
import TestSupport
import Testing

/// Runs the built `shop-admin` with `arguments`; returns its exit status and output. The wait happens on a thread
/// of its own: a blocking wait on one of Swift concurrency's few threads can stall every other test.
func shopAdmin(_ arguments: [String], environment: [String: String]) async throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = TestDatabase.repositoryRoot.appendingPathComponent(".build/debug/shop-admin")
    process.arguments = arguments
    process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    try process.run()
    let output = await withCheckedContinuation { (continuation: CheckedContinuation<Data, Never>) in
        Thread.detachNewThread {
            let data = pipe.fileHandleForReading.readDataToEndOfFile()
            try? pipe.fileHandleForReading.close()  // at once: Foundation's Process keeps its pipes open otherwise
            continuation.resume(returning: data)
        }
    }
    await exited(process)
    return (process.terminationStatus, String(decoding: output, as: UTF8.self))
}

/// Returns once `process` has exited, without blocking a thread (`waitUntilExit` would); or when the test is
/// cancelled (its time limit).
func exited(_ process: Process) async {
    while process.isRunning, !Task.isCancelled { try? await Task.sleep(for: .milliseconds(10)) }  // another process cannot notify us
}

extension DatabaseURL {
    var withPassword: String { "postgres://\(username):\(password ?? "")@\(host):\(port)/\(database)?sslmode=disable" }
}

@Suite("shop-admin projections, as a process")
struct ProjectionsCommandTests {
    @Test(.timeLimit(.minutes(2)))
    func rebuildsVerifiesAndCatchesATamperedView() async throws {
        let database = try await TestDatabase.create()
        try await withRunningStore(database) { store in
            for index in 0..<30 {
                let sku = try SKU("SKU-\(index)")
                let added = Product.Event.added(.init(sku: sku, name: "Product \(index)", description: "", price: try Money(minorUnits: 100, currency: .eur)))
                try await store.append([try NewEvent(added, codec: CatalogEvents.product)], to: try StreamName(category: "product", id: sku.rawValue), expectedVersion: .noStream)
            }
        }
        let views = scratchViews()
        let environment = ["SHOP_CATALOG_DATABASE_URL": database.withPassword, "SHOP_VIEWS_DIR": views.path]

        let rebuilt = try await shopAdmin(["projections", "rebuild", "catalog-product-listing"], environment: environment)
        #expect(rebuilt.status == 0, "\(rebuilt.output)")
        #expect(rebuilt.output.contains("rebuilt catalog-product-listing: generation 2, 30 events"))
        let again = try await shopAdmin(["projections", "rebuild", "catalog-product-listing"], environment: environment)
        #expect(again.status == 0 && again.output.contains("generation 3"))

        let verified = try await shopAdmin(["projections", "verify", "catalog-product-listing"], environment: environment)
        #expect(verified.status == 0 && verified.output.contains("matches a rebuild"), "\(verified.output)")

        // Events the view never receives (no service follows the store here): it matches a rebuild of its own past,
        // but it is stalled, and verify says how far behind it is.
        try await withRunningStore(database) { store in
            for index in 30..<35 {
                let sku = try SKU("SKU-\(index)")
                let added = Product.Event.added(.init(sku: sku, name: "Product \(index)", description: "", price: try Money(minorUnits: 100, currency: .eur)))
                try await store.append([try NewEvent(added, codec: CatalogEvents.product)], to: try StreamName(category: "product", id: sku.rawValue), expectedVersion: .noStream)
            }
        }
        let stalled = try await shopAdmin(["projections", "verify", "catalog-product-listing", "--catch-up", "0.5"], environment: environment)
        #expect(stalled.status == 1 && stalled.output.contains("STALLED: 5 events behind its store's head"), "\(stalled.output)")
        #expect(stalled.output.contains("matches a rebuild"), "\(stalled.output)")
        let caughtUp = try await shopAdmin(["projections", "rebuild", "catalog-product-listing"], environment: environment)
        #expect(caughtUp.status == 0, "\(caughtUp.output)")
        let verifiedAgain = try await shopAdmin(["projections", "verify", "catalog-product-listing"], environment: environment)
        #expect(verifiedAgain.status == 0 && !verifiedAgain.output.contains("STALLED"), "\(verifiedAgain.output)")

        // Tamper with the serving file: verify must notice, and say so with exit status 1.
        let current = try String(contentsOf: views.appendingPathComponent("catalog/catalog-product-listing/current"), encoding: .utf8)
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let file = try DatabaseQueue(path: views.appendingPathComponent("catalog/catalog-product-listing/g\(current).sqlite").path)
        try await file.write { try $0.execute(sql: "UPDATE products SET price_amount = 1 WHERE sku = 'SKU-7'") }
        let tampered = try await shopAdmin(["projections", "verify", "catalog-product-listing"], environment: environment)
        #expect(tampered.status == 1 && tampered.output.contains("DIFFERS"), "\(tampered.output)")

        let copy = views.appendingPathComponent("copy.sqlite")
        let pointInTime = try await shopAdmin(["projections", "rebuild", "catalog-product-listing", "--until", "1-1", "--output", copy.path], environment: environment)
        #expect(pointInTime.status == 0, "\(pointInTime.output)")
        let copied = try await DatabaseQueue(path: copy.path).read { try Int.fetchOne($0, sql: "SELECT count(*) FROM products") }
        #expect(copied == 0)

        let unknown = try await shopAdmin(["projections", "rebuild", "nope"], environment: environment)
        #expect(unknown.status == 64 && unknown.output.contains("no view named 'nope'"))
        let half = try await shopAdmin(["projections", "rebuild", "catalog-product-listing", "--until", "1-1"], environment: environment)
        #expect(half.status == 64 && half.output.contains("--until and --output go together"))
        let noDatabase = try await shopAdmin(["projections", "verify", "catalog-product-listing"],
                                       environment: ["SHOP_CATALOG_DATABASE_URL": "", "SHOP_VIEWS_DIR": views.path])
        #expect(noDatabase.status != 0 && noDatabase.output.contains("SHOP_CATALOG_DATABASE_URL"), "\(noDatabase.output)")
        let notBuilt = try await shopAdmin(["projections", "verify", "catalog-product-listing"],
                                     environment: environment.merging(["SHOP_VIEWS_DIR": scratchViews().path]) { $1 })
        #expect(notBuilt.status == 1 && notBuilt.output.contains("not built yet"), "\(notBuilt.output)")
    }
}

@Suite("shop-admin's output, as a process")
struct OperatorOutputTests {
    /// Text from the stores is the customers' (a cancel reason): shop-admin prints its control characters escaped, so
    /// that nothing a customer typed reaches the operator's terminal as a command (C1's CSI, a bidirectional override).
    @Test(.timeLimit(.minutes(1)))
    func controlCharactersFromTheStoresArePrintedEscaped() async throws {
        let database = try await TestDatabase.create()
        try await withRunningStore(database) { store in
            let payload = Data("{\"reason\":\"csi\u{9B}2J and \u{202E}reversed\"}".utf8)
            try await store.append([NewEvent(id: UUID(), type: "ordering.order-cancelled", payload: payload, metadata: .init())],
                                   to: try StreamName(category: "order", id: "o-1"), expectedVersion: .noStream)
        }
        let tail = try await shopAdmin(["events", "tail", "--context", "ordering", "--last", "1", "--database-url", database.withPassword],
                                       environment: [:])
        #expect(tail.status == 0, "\(tail.output)")
        #expect(tail.output.contains("\\u{9B}2J") && tail.output.contains("\\u{202E}reversed"), "\(tail.output)")
        #expect(!tail.output.unicodeScalars.contains { $0.value == 0x9B || $0.value == 0x202E })
    }
}
