import EventStore
import Foundation
import Hummingbird
import Ordering
import ServiceKit
import SharedKernel

/// Ordering's HTTP API: carts, checkout, orders.
struct OrderingAPI: Sendable {
    let store: EventStore
    let copy: CatalogCopy
    let carts: CommandHandler<Cart>
    let orders: CommandHandler<Order>
    let commands: CommandRunner

    init(store: EventStore, copy: CatalogCopy) {
        self.store = store
        self.copy = copy
        self.carts = CommandHandler(store: store, codec: OrderingEvents.cart)
        self.orders = CommandHandler(store: store, codec: OrderingEvents.order)
        self.commands = CommandRunner(store: store)
    }

    struct AddItem: Decodable { let sku: String, quantity: Int }
    struct SetQuantity: Decodable { let quantity: Int }
    struct Checkout: Decodable { let order: String? }
    struct Reason: Decodable { let reason: String }

    struct Written: Encodable { let stream: String, streamVersion: Int64, position: String? }

    struct CartView: Encodable {
        struct Item: Encodable { let sku: String, quantity: Int, name: String?, unitPrice: Money? }
        let customer: String, items: [Item], version: Int64
    }

    struct OrderView: Encodable {
        let order: String, customer: String, status: String, lines: [Order.Line], total: Money?
        let reason: String?, refundRequired: Bool, version: Int64
    }

    func addRoutes(to router: Router<some RequestContext>) {
        router.get("/carts/{customer}") { _, context in try await cart(try context.parameters.require("customer")) }
        router.post("/carts/{customer}/items") { request, context in
            let customer = try context.parameters.require("customer")
            let bytes = try await JSONBody.bytes(of: request)
            let body = try JSONBody.decode(AddItem.self, from: bytes)
            return try await cartCommand(request, bytes, customer) { transaction in
                try await requireSellable(body.sku, on: transaction)
                return .add(customer: customer, sku: body.sku, quantity: body.quantity)
            }
        }
        router.put("/carts/{customer}/items/{sku}") { request, context in
            let customer = try context.parameters.require("customer"), sku = try context.parameters.require("sku")
            let bytes = try await JSONBody.bytes(of: request)
            let body = try JSONBody.decode(SetQuantity.self, from: bytes)
            return try await cartCommand(request, bytes, customer) { _ in .setQuantity(customer: customer, sku: sku, quantity: body.quantity) }
        }
        router.delete("/carts/{customer}/items/{sku}") { request, context in
            let customer = try context.parameters.require("customer"), sku = try context.parameters.require("sku")
            return try await cartCommand(request, nil, customer) { _ in .remove(customer: customer, sku: sku) }
        }
        router.delete("/carts/{customer}") { request, context in
            let customer = try context.parameters.require("customer")
            return try await cartCommand(request, nil, customer) { _ in .clear(customer: customer) }
        }
        router.post("/carts/{customer}/checkout") { request, context in
            try await checkout(request, try context.parameters.require("customer"))
        }
        router.get("/orders/{order}") { _, context in try await order(try context.parameters.require("order")) }
        router.post("/orders/{order}/cancel") { request, context in
            let order = try context.parameters.require("order")
            let bytes = try await JSONBody.bytes(of: request)
            let body = try JSONBody.decode(Reason.self, from: bytes)
            return try await orderCommand(request, bytes, order, .cancel(order: order, reason: body.reason))
        }
        router.post("/orders/{order}/ship") { request, context in
            let order = try context.parameters.require("order")
            return try await orderCommand(request, nil, order, .ship(order: order))
        }
    }

    private func requireSellable(_ sku: String, on transaction: EventStore.Transaction) async throws {
        guard let product = try await copy.product(sku, on: transaction.connection) else {
            throw Problem.ruleBroken("unknown-product", "there is no product '\(sku.prefix(40))' in the catalog")
        }
        guard !product.discontinued else { throw Problem.ruleBroken("product-discontinued", "product \(sku) is discontinued") }
    }

    private func cartCommand(
        _ request: Request, _ bytes: Data?, _ customer: String,
        _ command: @escaping @Sendable (EventStore.Transaction) async throws -> Cart.Command
    ) async throws -> Response {
        let expected = try ETag.expectedVersion(request)
        return try await commands.run(request, body: bytes) { transaction in
            let stream = try OrderingStreams.cart(customer)
            let result = try await ifMatch {
                try await carts.handle(try await command(transaction), on: stream, in: transaction, expectedVersion: expected)
            }
            return try .json(.ok, Written(stream: stream.rawValue, streamVersion: result.streamVersion, position: result.position?.description),
                             etag: ETag.make(result.streamVersion))
        }
    }

    private func orderCommand(_ request: Request, _ bytes: Data?, _ order: String, _ command: Order.Command) async throws -> Response {
        let expected = try ETag.expectedVersion(request)
        return try await commands.run(request, body: bytes) { transaction in
            let stream = try OrderingStreams.order(order)
            let result = try await ifMatch {
                try await orders.handle(command, on: stream, in: transaction, expectedVersion: expected)
            }
            return try .json(.ok, Written(stream: stream.rawValue, streamVersion: result.streamVersion, position: result.position?.description),
                             etag: ETag.make(result.streamVersion))
        }
    }

    /// Checks the cart out into an order, priced from Ordering's own copy of the catalog: the cart's
    /// checkout and the order's placement are appended in one transaction.
    private func checkout(_ request: Request, _ customer: String) async throws -> Response {
        let bytes = try await JSONBody.optionalBytes(of: request)
        let body = try bytes.map { try JSONBody.decode(Checkout.self, from: $0) }
        let order = body?.order ?? UUID().uuidString.lowercased()
        return try await commands.run(request, body: bytes) { transaction in
            let cartStream = try OrderingStreams.cart(customer), orderStream = try OrderingStreams.order(order)
            try await transaction.lock([cartStream, orderStream])
            let (cart, cartVersion) = try carts.fold(try await transaction.readStream(cartStream))
            var lines: [Order.Line] = []
            for item in cart.items {
                guard let product = try await copy.product(item.sku, on: transaction.connection) else {
                    throw Problem.ruleBroken("unknown-product", "product \(item.sku) is no longer in the catalog: remove it from the cart")
                }
                guard !product.discontinued else {
                    throw Problem.ruleBroken("product-discontinued", "product \(item.sku) is discontinued: remove it from the cart")
                }
                lines.append(Order.Line(sku: item.sku, name: product.name, unitPrice: product.price, quantity: item.quantity))
            }
            let (orderState, orderVersion) = try orders.fold(try await transaction.readStream(orderStream))
            let placed = try Order.decide(.place(order: order, customer: customer, lines: lines), orderState)
            let checkedOut = try Cart.decide(.checkOut(customer: customer, order: order), cart)
            try await transaction.append(try checkedOut.map { try NewEvent($0, codec: OrderingEvents.cart) }, to: cartStream,
                                         expectedVersion: .exact(cartVersion))
            let appended = try await transaction.append(try placed.map { try NewEvent($0, codec: OrderingEvents.order) }, to: orderStream,
                                                        expectedVersion: .exact(orderVersion))
            let state = Order.replay(placed, from: orderState)
            return try .json(.created, OrderView(
                order: order, customer: customer, status: state.status?.rawValue ?? "placed", lines: state.lines, total: state.total,
                reason: nil, refundRequired: false, version: appended.streamVersion), etag: ETag.make(appended.streamVersion),
                location: "/orders/\(order)")
        }
    }

    private func cart(_ customer: String) async throws -> Response {
        let stream: StreamName
        do { stream = try OrderingStreams.cart(customer) } catch { throw Problem.notFound("there is no cart '\(customer.prefix(40))'") }
        let (cart, version) = try await carts.load(stream)
        var items: [CartView.Item] = []
        for item in cart.items {
            let product = try await copy.product(item.sku)
            items.append(.init(sku: item.sku, quantity: item.quantity, name: product?.name, unitPrice: product?.price))
        }
        return try CommandReply.json(.ok, CartView(customer: customer, items: items, version: version), etag: ETag.make(version))
            .response(replayed: false)
    }

    private func order(_ id: String) async throws -> Response {
        let stream: StreamName
        do { stream = try OrderingStreams.order(id) } catch { throw Problem.notFound("there is no order '\(id.prefix(40))'") }
        let (order, version) = try await orders.load(stream)
        guard let status = order.status else { throw Problem.notFound("there is no order \(id)") }
        return try CommandReply.json(.ok, OrderView(
            order: id, customer: order.customer, status: status.rawValue, lines: order.lines, total: order.total,
            reason: order.reason, refundRequired: order.refundRequired, version: version), etag: ETag.make(version))
            .response(replayed: false)
    }
}

extension OrderingError: ProblemConvertible {
    public var problem: Problem {
        switch self {
        case .unknownOrder: .notFound(description)
        default: .ruleBroken(rule, description)
        }
    }
}
