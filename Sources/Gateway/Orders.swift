import Contracts
import Crypto
import Essentials
import Foundation
import Hummingbird
import ServiceKit
import SharedKernel

/// An order as Ordering answers `GET /orders/{id}` (what the BFFs read of it).
public struct OrderDocument: Codable, Sendable {
    public struct Line: Codable, Sendable { public let sku: String, name: String, quantity: Int, unitPrice: Money? }
    public struct Fulfilment: Codable, Sendable { public let status: SagaStatus, step: String?, reason: String? }
    public let order: String, customer: String, status: OrderStatus, lines: [Line], total: Money?, reason: String?
    public let refundRequired: Bool?
    public let fulfilment: Fulfilment?

    /// Every status an order has.
    public static let statuses = OrderStatus.allCases.map(\.rawValue)
    /// An amount in minor units (a 64-bit integer) and its currency. A request's amount and currency are read as
    /// any other text and number; whether the shop takes them is a rule (422).
    public static let moneySchema = Schema.object(["amount": Schema.integer(minimum: .min, maximum: .max), "currency": Schema.text()])
    public static let lineSchema = Schema.object(["sku": Schema.string, "name": Schema.string, "quantity": Schema.integer],
                                                 optional: ["unitPrice": Schema.ref("Money")])

    /// The saga has given its answer.
    public var isSettled: Bool { status.isSettled }
}

extension Downstreams {
    /// The customer's own order (`wait`: seconds to wait for its outcome); another customer's is answered as
    /// if there were none, so order ids cannot be probed.
    ///
    /// A wait reads the order, then waits on ``orders`` (the BFF's watch of Ordering's feed) for it to change, and reads
    /// it again: no connection to Ordering is held while it waits. At most ``WaitAllowance/perSubject`` waits at once
    /// per customer: beyond them the order is answered as it is now, and the client follows it as it would after a
    /// wait that ran out.
    public func order(_ id: String, of customer: String, wait: Int = 0, for request: Request, context: GatewayContext) async throws -> OrderDocument {
        let notFound = Problem.notFound("there is no order '\(id.prefix(64))'")
        @Sendable func current() async throws -> OrderDocument {
            let answer = try await ordering.forward(.GET, OrderingRoutes.order(id), for: request, context: context)
            if answer.status == .notFound { throw notFound }
            let order = try answer.decode(OrderDocument.self)
            guard order.customer == customer else { throw notFound }
            return order
        }
        guard wait > 0, waits.begin(customer) else { return try await current() }
        defer { waits.end(customer) }
        let deadline = ContinuousClock.now + .seconds(wait)
        return try await orders.watching(id) { ticket in
            while true {
                let order = try await current()
                let left = deadline - ContinuousClock.now
                if order.isSettled || left <= .zero { return order }
                await ticket.changed(within: left)
            }
        }
    }
}

extension Downstreams {
    struct Checkout: Encodable, Sendable { let card: String, order: String }

    /// Checks the customer's cart out with `card`; returns the order's id, which comes from the customer and the
    /// request's `Idempotency-Key`, so a retried checkout names (and is) the same order.
    /// `key`: the client's idempotency key when it is not the request's `Idempotency-Key` (a web form's).
    public func checkout(card: String, of customer: String, key: String? = nil, for request: Request, context: GatewayContext) async throws -> String {
        guard let key = key ?? request.headers[.idempotencyKey] else {
            throw Problem.badRequest("missing-idempotency-key", "commands need an Idempotency-Key header (a unique string per intended action)")
        }
        let order = Wire.orderID(customer: customer, key: key)
        try await ordering.forward(.POST, OrderingRoutes.checkout(customer), json: Checkout(card: card, order: order),
                                   for: request, context: context, key: key).requireSuccess()
        return order
    }

    /// The customer's cart as Ordering answers it, decoded as `T`.
    public func cart<T: Decodable>(_ type: T.Type, of customer: String, for request: Request, context: GatewayContext) async throws -> T {
        try await ordering.forward(.GET, OrderingRoutes.cart(customer), for: request, context: context).decode(T.self)
    }
}

/// Small things both BFFs write the same way.
public enum Wire {
    /// The order a checkout places: the same customer and idempotency key always name the same order, so a
    /// retried checkout is the same checkout.
    public static func orderID(customer: String, key: String) -> String {
        "o-" + digest(Data("\(customer)\n\(key)".utf8))
    }

    /// 24 hex digits of the data's SHA-256.
    public static func digest(_ data: Data) -> String {
        SHA256.hash(data: data).prefix(12).map { String(format: "%02x", $0) }.joined()
    }

    /// A JSON answer, already encoded.
    public static func json(data: Data) -> Response {
        Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(data: data)))
    }

    /// A JSON answer.
    public static func json(_ value: some Encodable, status: HTTPResponse.Status = .ok, etag: String? = nil, location: String? = nil) throws -> Response {
        try CommandReply.json(status, value, etag: etag, location: location).response(replayed: false)
    }
}
