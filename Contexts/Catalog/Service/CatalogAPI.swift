import Contracts
import Catalog
import EventStore
import Foundation
import Hummingbird
import ServiceKit
import ServiceRuntime
import SharedKernel

/// Catalog's HTTP API: products, stock and reservations. Commands take an `Idempotency-Key`; commands on one
/// entity take an optional `If-Match` with the version read. Single-entity reads fold the entity's streams.
struct CatalogAPI: Sendable {
    let store: EventStore
    let products: CommandHandler<Product>
    let stock: CommandHandler<Stock>
    let commands: CommandRunner

    init(store: EventStore) {
        self.store = store
        self.products = CommandHandler(store: store, codec: CatalogEvents.product)
        // A product's stock grows with every order: loaded from its latest snapshot after a restart.
        self.stock = CommandHandler(store: store, codec: CatalogEvents.stock, snapshots: .init(schema: Stock.snapshotSchema, every: 1_000))
        self.commands = CommandRunner(store: store)
    }

    // MARK: Request bodies (shapes only: values are checked by the domain)

    struct AddProduct: Codable { let sku: String, name: String, description: String?, price: MoneyBody }
    struct Rename: Codable { let name: String }
    struct Reprice: Codable { let price: MoneyBody }
    struct Receive: Codable { let quantity: Int }
    struct Reserve: Codable {
        struct Line: Codable { let sku: String, quantity: Int }
        let order: String
        let lines: [Line]
    }

    // MARK: Replies

    struct ProductView: Codable {
        struct StockView: Codable { let onHand: Int, reserved: Int, available: Int }
        let sku: String, name: String, description: String, price: Money, discontinued: Bool, version: Int64
        let stock: StockView
    }

    func addRoutes(to router: Router<some RequestContext>) {
        router.post("/products") { request, context in try await addProduct(request) }
        router.get("/products/{sku}") { request, context in try await product(try pathSKU(context)) }
        router.put("/products/{sku}/name") { request, context in
            let sku = try pathSKU(context)
            return try await productCommand(request, sku) { (body: Rename) in .rename(sku, to: body.name) }
        }
        router.put("/products/{sku}/price") { request, context in
            let sku = try pathSKU(context)
            return try await productCommand(request, sku) { (body: Reprice) in .changePrice(sku, to: try body.price.money()) }
        }
        router.post("/products/{sku}/discontinue") { request, context in
            let sku = try pathSKU(context)
            return try await productCommand(request, sku, bodyless: true) { (_: Empty) in .discontinue(sku) }
        }
        router.post("/products/{sku}/stock") { request, context in try await receive(request, try pathSKU(context)) }
        router.post("/reservations") { request, context in try await reserve(request) }
        router.post("/stock/{sku}/reservations/{order}/release") { request, context in
            let sku = try pathSKU(context), order = try context.parameters.text("order")
            return try await stockCommand(request, sku, .release(sku, order: order))
        }
        router.post("/stock/{sku}/reservations/{order}/commit") { request, context in
            let sku = try pathSKU(context), order = try context.parameters.text("order")
            return try await stockCommand(request, sku, .commit(sku, order: order))
        }
    }

    struct Empty: Codable {}

    private func pathSKU(_ context: some RequestContext) throws -> SKU {
        let text = try context.parameters.text("sku")
        do { return try SKU(text) } catch { throw Problem.notFound("there is no product '\(text.prefix(40))'") }
    }

    private func addProduct(_ request: Request) async throws -> Response {
        let bytes = try await JSONBody.bytes(of: request)
        let body = try JSONBody.decode(AddProduct.self, from: bytes)
        return try await commands.run(request, body: bytes) { transaction in
            let sku = try SKU(body.sku)
            let command = Product.Command.add(sku: sku, name: body.name, description: body.description ?? "", price: try body.price.money())
            let stream = CatalogStreams.product(sku)
            let result = try await products.handle(command, on: stream, in: transaction)
            return try .written(result, to: stream, status: .created, location: CatalogRoutes.product(sku.rawValue))
        }
    }

    private func productCommand<Body: Codable>(
        _ request: Request, _ sku: SKU, bodyless: Bool = false, _ command: (Body) throws -> Product.Command
    ) async throws -> Response {
        let bytes = bodyless ? nil : try await JSONBody.bytes(of: request)
        let body = try bytes.map { try JSONBody.decode(Body.self, from: $0) } ?? JSONBody.decode(Body.self, from: Data("{}".utf8))
        let expected = try ETag.expectedVersion(request)
        let command = try command(body)
        return try await commands.run(request, body: bytes) { transaction in
            let stream = CatalogStreams.product(sku)
            let result = try await ifMatch {
                try await products.handle(command, on: stream, in: transaction, expectedVersion: expected)
            }
            return try .written(result, to: stream)
        }
    }

    private func receive(_ request: Request, _ sku: SKU) async throws -> Response {
        let bytes = try await JSONBody.bytes(of: request)
        let body = try JSONBody.decode(Receive.self, from: bytes)
        let expected = try ETag.expectedVersion(request)
        return try await commands.run(request, body: bytes) { transaction in
            try await requireProduct(sku, in: transaction)
            let stream = CatalogStreams.stock(sku)
            let result = try await ifMatch {
                try await stock.handle(.receive(sku, quantity: body.quantity), on: stream, in: transaction, expectedVersion: expected)
            }
            return try .written(result, to: stream)
        }
    }

    private func stockCommand(_ request: Request, _ sku: SKU, _ command: Stock.Command) async throws -> Response {
        try await commands.run(request, body: nil) { transaction in
            let stream = CatalogStreams.stock(sku)
            let result = try await stock.handle(command, on: stream, in: transaction)
            return try .written(result, to: stream)
        }
    }

    /// Reserves every line for the order, or none: all the SKUs' streams are locked, and each line reserved in
    /// one transaction; a line refused refuses the whole reservation, and its transaction is rolled back.
    private func reserve(_ request: Request) async throws -> Response {
        let bytes = try await JSONBody.bytes(of: request)
        let body = try JSONBody.decode(Reserve.self, from: bytes)
        return try await commands.run(request, body: bytes) { transaction in
            guard !body.lines.isEmpty else { throw Problem.ruleBroken("empty-reservation", "a reservation needs at least one line") }
            guard body.lines.count <= 50 else { throw Problem.ruleBroken("too-many-lines", "a reservation has at most 50 lines") }
            let lines = try body.lines.map { (sku: try SKU($0.sku), quantity: $0.quantity) }
            guard Set(lines.map(\.sku)).count == lines.count else {
                throw Problem.ruleBroken("duplicate-sku", "each SKU may appear once in a reservation")
            }
            // Several lines: all their locks first, in name order (one line's command takes its own lock).
            if lines.count > 1 { try await transaction.lock(lines.map { CatalogStreams.stock($0.sku) }) }
            var last: Position?
            for line in lines.sorted(by: { $0.sku < $1.sku }) {
                try await requireProduct(line.sku, in: transaction)
                let reserved = try await stock.handle(.reserve(line.sku, order: body.order, quantity: line.quantity),
                                                      on: CatalogStreams.stock(line.sku), in: transaction)
                last = reserved.position ?? last
            }
            struct Reserved: Encodable {
                struct Line: Encodable { let sku: String, quantity: Int }
                let order: String, lines: [Line], position: String?
            }
            return try .json(.created, Reserved(
                order: body.order, lines: lines.map { .init(sku: $0.sku.rawValue, quantity: $0.quantity) }, position: last?.description))
        }
    }

    private func requireProduct(_ sku: SKU, in transaction: EventStore.Transaction) async throws {
        let (state, _) = try await products.state(of: CatalogStreams.product(sku), in: transaction, locking: false)
        guard state.exists else { throw CatalogError.unknownProduct(sku) }
        guard !state.isDiscontinued else { throw CatalogError.productDiscontinued(sku) }
    }

    private func product(_ sku: SKU) async throws -> Response {
        let (product, version) = try await products.load(CatalogStreams.product(sku))
        guard product.exists, let price = product.price else { throw Problem.notFound("there is no product \(sku)") }
        let (stock, _) = try await self.stock.load(CatalogStreams.stock(sku))
        let view = ProductView(
            sku: sku.rawValue, name: product.name, description: product.description, price: price,
            discontinued: product.isDiscontinued, version: version,
            stock: .init(onHand: stock.onHand, reserved: stock.reserved, available: stock.available))
        return try CommandReply.json(.ok, view, etag: ETag.make(version)).response(replayed: false)
    }

}
