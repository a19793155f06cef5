import Contracts
import Essentials
import EventStore
import Foundation
import Hummingbird
import Ordering
import ServiceKit
import ServiceRuntime
import SharedKernel
import Synchronization

/// Ordering's HTTP API: carts, checkout, orders.
struct OrderingAPI: Sendable {
    let store: EventStore
    let copy: CatalogCopy
    let carts: CommandHandler<Cart>
    let orders: CommandHandler<Order>
    let commands: CommandRunner
    let sagas: Sagas
    let orchestrator: FulfilmentOrchestrator

    init(store: EventStore, copy: CatalogCopy, orchestrator: FulfilmentOrchestrator) {
        self.store = store
        self.copy = copy
        self.carts = CommandHandler(store: store, codec: OrderingEvents.cart)
        // The saga's: one set of kept orders for the checkout, the customers' commands and the saga's records.
        self.orders = orchestrator.sagas.orders
        self.commands = CommandRunner(store: store)
        self.sagas = orchestrator.sagas
        self.orchestrator = orchestrator
    }

    struct AddItem: Codable { let sku: String, quantity: Int }
    struct SetQuantity: Codable { let quantity: Int }
    struct Checkout: Codable { let order: String?, card: String }
    struct Reason: Codable { let reason: String }


    struct CartView: Encodable {
        struct Item: Encodable { let sku: String, quantity: Int, name: String?, unitPrice: Money? }
        let customer: String, items: [Item], version: Int64
    }

    struct OrderView: Encodable {
        let order: String, customer: String, status: OrderStatus, lines: [Order.Line], total: Money?
        let reason: String?, refundRequired: Bool, version: Int64
        let fulfilment: FulfilmentView?
    }

    /// Where the order's fulfilment saga stands.
    struct FulfilmentView: Encodable {
        let status: SagaStatus, step: String?, reason: String?, updatedAt: Date

        init(_ instance: Sagas.Instance) {
            status = SagaStatus(instance.status)
            step = instance.step?.rawValue
            reason = instance.state.reason
            updatedAt = instance.updatedAt
        }
    }

    func addRoutes(to router: Router<some RequestContext>) {
        router.get("/carts/{customer}") { _, context in try await cart(try context.parameters.text("customer")) }
        router.post("/carts/{customer}/items") { request, context in
            let customer = try context.parameters.text("customer")
            let bytes = try await JSONBody.bytes(of: request)
            let body = try JSONBody.decode(AddItem.self, from: bytes)
            return try await cartCommand(request, bytes, customer) { transaction in
                try await requireSellable(body.sku, on: transaction)
                return .add(customer: customer, sku: body.sku, quantity: body.quantity)
            }
        }
        router.put("/carts/{customer}/items/{sku}") { request, context in
            let customer = try context.parameters.text("customer"), sku = try context.parameters.text("sku")
            let bytes = try await JSONBody.bytes(of: request)
            let body = try JSONBody.decode(SetQuantity.self, from: bytes)
            return try await cartCommand(request, bytes, customer) { _ in .setQuantity(customer: customer, sku: sku, quantity: body.quantity) }
        }
        router.delete("/carts/{customer}/items/{sku}") { request, context in
            let customer = try context.parameters.text("customer"), sku = try context.parameters.text("sku")
            return try await cartCommand(request, nil, customer) { _ in .remove(customer: customer, sku: sku) }
        }
        router.delete("/carts/{customer}") { request, context in
            let customer = try context.parameters.text("customer")
            return try await cartCommand(request, nil, customer) { _ in .clear(customer: customer) }
        }
        router.post("/carts/{customer}/checkout") { request, context in
            try await checkout(request, try context.parameters.text("customer"))
        }
        router.get("/orders/{order}") { request, context in
            try await order(try context.parameters.text("order"), wait: try Self.waitSeconds(request))
        }
        router.post("/orders/{order}/cancel") { request, context in
            let order = try context.parameters.text("order")
            let bytes = try await JSONBody.bytes(of: request)
            let body = try JSONBody.decode(Reason.self, from: bytes)
            return try await cancel(request, bytes, order, reason: body.reason)
        }
        router.post("/orders/{order}/ship") { request, context in
            let order = try context.parameters.text("order")
            return try await orderCommand(request, nil, order, .ship(order: order))
        }
    }

    private func requireSellable(_ sku: String, on transaction: EventStore.Transaction) async throws {
        guard let product = try await copy.products([sku], for: transaction)[sku] else {
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
            return try .written(result, to: stream)
        }
    }

    private func orderCommand(_ request: Request, _ bytes: Data?, _ order: String, _ command: Order.Command) async throws -> Response {
        let expected = try ETag.expectedVersion(request)
        return try await commands.run(request, body: bytes) { transaction in
            let stream = try OrderingStreams.order(order)
            let result = try await ifMatch {
                try await orders.handle(command, on: stream, in: transaction, expectedVersion: expected)
            }
            return try .written(result, to: stream)
        }
    }

    /// Checks the cart out into an order, priced from Ordering's own copy of the catalog: the cart's
    /// checkout and the order's placement are appended in one transaction.
    private func checkout(_ request: Request, _ customer: String) async throws -> Response {
        let bytes = try await JSONBody.optionalBytes(of: request)
        let body = try bytes.map { try JSONBody.decode(Checkout.self, from: $0) }
        guard let body else {
            throw Problem.badRequest("missing-body", "checkout needs a JSON body with the card to pay with: {\"card\": \"4242 4242 4242 4242\"}")
        }
        let card = try Self.valid(card: body.card)
        let order = body.order ?? UUID().uuidString.lowercased()
        // The instance's lock, taken while the checkout runs, and the instance as the checkout writes it: its worker
        // here starts at once, without claiming or reading it. The lock connection answers as soon as the checkout's
        // own statements do (a stalled one is closed within the same deadline as theirs).
        async let claimed = orchestrator.claimAhead(order)
        let started = Started()
        let response: Response
        do {
            response = try await checkout(request, bytes, customer, order, card, started)
        } catch {
            orchestrator.giveBack(await claimed)
            throw error
        }
        let claim = await claimed
        if response.status == .created, response.headers[.idempotentReplayed] == nil, let state = started.state.withLock({ $0 }) {
            orchestrator.take(order, claimed: claim, as: sagas.started(state))
        } else {
            orchestrator.giveBack(claim)
            if response.status == .created { orchestrator.take(order) }
        }
        return response
    }

    /// The saga a checkout started, as its last run decided it (the one that committed, when it did).
    final class Started: Sendable {
        let state = Mutex<Fulfilment.State?>(nil)
    }

    private func checkout(
        _ request: Request, _ bytes: Data?, _ customer: String, _ order: String, _ card: String, _ started: Started
    ) async throws -> Response {
        try await commands.run(request, body: bytes) { transaction in
            let cartStream = try OrderingStreams.cart(customer), orderStream = try OrderingStreams.order(order)
            // The cart's lock first, then the order's (each append takes its stream's): a checkout is the only
            // transaction that writes both, so two of them cannot deadlock.
            let cart = try await carts.handle(.checkOut(customer: customer, order: order), on: cartStream, in: transaction)
            guard case .checkedOut(let checkedOut)? = cart.events.first else { preconditionFailure("checking out a cart yields CartCheckedOut") }
            let products = try await copy.products(checkedOut.items.map(\.sku), for: transaction)
            let lines = try checkedOut.items.map { item in
                guard let product = products[item.sku] else {
                    throw Problem.ruleBroken("unknown-product", "product \(item.sku) is no longer in the catalog: remove it from the cart")
                }
                guard !product.discontinued else {
                    throw Problem.ruleBroken("product-discontinued", "product \(item.sku) is discontinued: remove it from the cart")
                }
                return Order.Line(sku: item.sku, name: product.name, unitPrice: product.price, quantity: item.quantity)
            }
            // The order's fulfilment starts in the same transaction, its first order command appended with the
            // placement: no placed order is ever without its saga.
            var saga: Fulfilment.Transition?
            let written = try await orders.handle(on: orderStream, in: transaction) { current in
                let placed = try Order.decide(.place(order: order, customer: customer, lines: lines), current)
                guard case .placed(let event)? = placed.first else { preconditionFailure("placing an order yields OrderPlaced") }
                let started = Fulfilment.start(event, card: card)
                saga = started
                guard let command = started.orderCommand else { return placed }
                return placed + (try Order.decide(command, Order.replay(placed, from: current)))
            }
            guard let saga else { preconditionFailure("placing an order starts its saga") }
            try await sagas.start(saga.state, in: transaction)
            started.state.withLock { $0 = saga.state }
            let state = written.state
            return try .json(.created, OrderView(
                order: order, customer: customer, status: OrderStatus(state.status ?? .placed), lines: state.lines, total: state.total,
                reason: nil, refundRequired: false, version: written.streamVersion, fulfilment: nil), etag: ETag.make(written.streamVersion),
                location: "/orders/\(order)")
        }
    }

    /// A card number as the payment provider takes it: 12 to 19 digits, spaces allowed.
    static func valid(card: String) throws -> String {
        let digits = card.filter { $0 != " " }
        guard (12...19).contains(digits.count), digits.allSatisfy({ $0.isASCII && $0.isNumber }) else {
            throw Problem.ruleBroken("invalid-card", "a card number is 12 to 19 digits")
        }
        return digits
    }

    /// `?wait=SECONDS` (0 to 30): how long a read of an order may wait for its saga's outcome.
    static func waitSeconds(_ request: Request) throws -> Double {
        guard let text = request.uri.queryParameters["wait"] else { return 0 }
        guard let seconds = Double(String(text)), seconds.isFinite, (0...30).contains(seconds) else {
            throw Problem.badRequest("invalid-wait", "wait is a number of seconds from 0 to 30")
        }
        return seconds
    }

    /// Cancels an order and, in the same transaction, turns its saga to compensation. The saga's row is
    /// locked before the order's stream, in the order the saga's own updates take them (no deadlock).
    private func cancel(_ request: Request, _ bytes: Data, _ order: String, reason: String) async throws -> Response {
        let expected = try ETag.expectedVersion(request)
        let response = try await commands.run(request, body: bytes) { transaction in
            let stream = try OrderingStreams.order(order)
            let hasSaga = try await sagas.lock(order, in: transaction)
            let result = try await ifMatch {
                try await orders.handle(.cancel(order: order, reason: reason), on: stream, in: transaction, expectedVersion: expected)
            }
            if hasSaga, case .cancelled(let cancelled)? = result.events.first {
                let attempt = Sagas.Attempt(step: "customer", attempt: 1, outcome: .cancelled, reason: cancelled.reason, startedAt: Date())
                try await sagas.update(order, attempt: attempt, in: transaction) { state in
                    Fulfilment.Transition(state: Fulfilment.cancel(state, reason: cancelled.reason))
                }
            }
            return try .written(result, to: stream)
        }
        orchestrator.poke()
        return response
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

    /// An order as it stands; with `wait`, waits up to that many seconds for its saga's outcome (confirmed,
    /// rejected or cancelled) and answers with what it has then.
    ///
    /// Read once; when a write of this process's saga wakes it, it answers with what that write left (the order and
    /// the instance, kept by ``Sagas/recent``) without reading them again. Any other wake-up (another process's
    /// announcement, a customer's command) reads.
    private func order(_ id: String, wait: Double) async throws -> Response {
        let stream: StreamName
        do { stream = try OrderingStreams.order(id) } catch { throw Problem.notFound("there is no order '\(id.prefix(40))'") }
        let deadline = ContinuousClock.now + .milliseconds(Int64(wait * 1000))
        // Woken by appends to this order's stream only (and by other processes' announcements), not by every append.
        return try await store.watching(stream) { appended in
            var read: Int64?
            while true {
                let seen = appended.generation
                // Only while it is still the order's latest here: nothing this process wrote since (a cancellation) is missed.
                let written = read.flatMap { read in
                    sagas.recent.latest(id).flatMap { $0.orderVersion > read && orders.cache.entry(stream)?.version == $0.orderVersion ? $0 : nil }
                }
                let (order, version) = if let written { (written.order, written.orderVersion) } else { try await orders.load(stream) }
                read = version
                guard let status = order.status else { throw Problem.notFound("there is no order \(id)") }
                let left = deadline - ContinuousClock.now
                if [.placed, .awaitingStock, .awaitingPayment].contains(status), left > .zero {
                    await appended.wait(past: seen, timeout: left)
                    continue
                }
                let saga = if let written { written.instance } else { try await sagas.instance(id) }
                return try CommandReply.json(.ok, OrderView(
                    order: id, customer: order.customer, status: OrderStatus(status), lines: order.lines, total: order.total,
                    reason: order.reason, refundRequired: order.refundRequired, version: version, fulfilment: saga.map(FulfilmentView.init)),
                    etag: ETag.make(version)).response(replayed: false)
            }
        }
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
