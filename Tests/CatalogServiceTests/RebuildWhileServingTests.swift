import Catalog
import CatalogService
import EventStore
import Foundation
import HummingbirdTesting
import ProductListing
import Projections
import SharedKernel
import Synchronization
import TestSupport
import Testing

@Suite("Queries while their view is rebuilt")
struct RebuildWhileServingTests {
    /// Another projector of the same view (as `shop-admin projections rebuild` in another process is) rebuilds
    /// it again and again while clients read it over HTTP: every answer is a 200 with every product.
    @Test(.timeLimit(.minutes(2)))
    func queriesKeepAnsweringInFullThroughRebuildsAndSwaps() async throws {
        let url = try await TestDatabase.create()
        let views = scratchViews()
        let products = 100
        try await withRunningStore(url) { store in
            for index in 0..<products {
                let sku = try SKU("P-\(index)")
                let added = Product.Event.added(.init(sku: sku, name: "Product \(index)", description: "Number \(index)",
                                                      price: try Money(minorUnits: 100, currency: .eur)))
                try await store.append([try NewEvent(added, codec: CatalogEvents.product)], to: try StreamName(category: "product", id: sku.rawValue),
                                       expectedVersion: .noStream)
                let stock = (1...5).map { Stock.Event.received(.init(sku: sku, quantity: $0)) }
                try await store.append(try stock.map { try NewEvent($0, codec: CatalogEvents.stock) }, to: try StreamName(category: "stock", id: sku.rawValue),
                                       expectedVersion: .noStream)
            }
        }
        let app = try await CatalogService.application(.init(port: 0, database: url, viewsDirectory: views, serviceSecret: TestSecrets.service).forTests,
                                                       logger: TestDatabase.logger)
        try await app.test(.live) { service in
            let client = try await service.calling("catalog")
            let head = try await withRunningStore(url) { try await $0.lastCommittedPosition() }
            let first = try await client.object("/products?limit=100&minPosition=\(head)")
            #expect((first["products"] as? [[String: Any]])?.count == products)

            let answers = Answers()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for reader in 0..<2 {
                    group.addTask {
                        repeat {
                            let uri = reader == 0 ? "/products?limit=100" : "/products/search?q=product&limit=100"
                            let response = try await client.execute(uri: uri, method: .get)
                            let count = (response.object["products"] as? [[String: Any]])?.count
                            answers.record(response.status == .ok && count == products ? nil : "\(uri): \(response.status) with \(count ?? -1) products")
                        } while answers.rebuilding.load(ordering: .relaxed)
                    }
                }
                try await withRunningStore(url) { store in
                    let rebuilder = try Projector(ProductListing(), store: store, directory: views, logger: TestDatabase.logger)
                    for _ in 0..<5 { try await rebuilder.rebuild() }
                }
                answers.rebuilding.store(false, ordering: .relaxed)
                try await group.waitForAll()
            }
            let (full, wrong) = answers.counts
            #expect(wrong.count == 0, "\(wrong.prefix(5))")
            #expect(full >= 10, "only \(full) answers while rebuilding")
            // The service serves the last generation now, and still in full.
            let status = try #require(try await client.object("/admin/views")["views"] as? [[String: Any]])
            #expect(status.first?["generation"] as? Int == 6)
            #expect((try await client.object("/products?limit=100")["products"] as? [[String: Any]])?.count == products)
        }
    }
}

/// What the readers got while the view was rebuilt.
final class Answers: Sendable {
    let rebuilding = Atomic(true)
    private let state = Mutex((full: 0, wrong: [String]()))

    /// A full answer (`nil`), or what was wrong with it.
    func record(_ wrong: String?) {
        state.withLock { state in
            if let wrong { state.wrong.append(wrong) } else { state.full += 1 }
        }
    }

    var counts: (full: Int, wrong: [String]) { state.withLock { ($0.full, $0.wrong) } }
}
