import Essentials
import Telemetry
import Tracing
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Identity
import NIOCore
import NIOHTTP1
import ServiceClient
import ServiceKit
import Synchronization

/// The context services behind a BFF.
public struct Downstreams: Sendable {
    public let catalog: Downstream, ordering: Downstream, billing: Downstream
    /// What the BFF knows of orders changing, from Ordering's feed: the requests that wait for an order (a checkout's
    /// outcome, an order's next change) wait on it, and hold no connection to Ordering meanwhile.
    public let orders: OrderWatch
    /// How many waits each customer may have at once; past it, a request is answered at once without waiting.
    let waits: WaitAllowance

    /// - Parameter orderingFeed: Ordering, for the order watch's long poll of its feed: a downstream of its own, so
    ///   that the poll never takes a place that ordinary calls need.
    public init(catalog: Downstream, ordering: Downstream, billing: Downstream, orderingFeed: Downstream, waitsPerCustomer: Int = 4,
                logger: Logger) {
        self.catalog = catalog
        self.ordering = ordering
        self.billing = billing
        self.orders = OrderWatch(feed: orderingFeed, logger: logger)
        self.waits = WaitAllowance(perSubject: waitsPerCustomer)
    }
    public var all: [Downstream] { [catalog, ordering, billing, orders.feed] }
}

/// Counts each subject's requests that wait, and lets a few through at a time.
final class WaitAllowance: Sendable {
    let perSubject: Int
    private let waiting = Mutex<[String: Int]>([:])

    init(perSubject: Int) { self.perSubject = perSubject }

    /// Whether `subject` may start one more wait; if so, it must call ``end(_:)`` when it is over.
    func begin(_ subject: String) -> Bool {
        waiting.withLock { waiting in
            guard waiting[subject, default: 0] < perSubject else { return false }
            waiting[subject, default: 0] += 1
            return true
        }
    }

    func end(_ subject: String) {
        waiting.withLock { waiting in
            let left = waiting[subject, default: 1] - 1
            waiting[subject] = left > 0 ? left : nil
        }
    }
}

extension Downstream {
    /// Sends a request for a client's request: with its request id, its trace context and, for a command, an
    /// idempotency key made from the client's (`<client key>:<suffix>`), so a client's retry is a retry downstream.
    /// The client's key is its request's `Idempotency-Key`, or `key` (a web form's, which carries it as a field).
    public func forward(
        _ method: HTTPMethod, _ path: String, json: (any Encodable & Sendable)? = nil, for request: Hummingbird.Request, context: GatewayContext,
        key: String? = nil, keySuffix: String? = nil
    ) async throws -> Response {
        var body: ByteBuffer?
        if let json { body = ByteBuffer(data: try JSONEncoder.sortedKeys.encode(json)) }
        return try await forward(method, path, raw: body, for: request, context: context, key: key, keySuffix: keySuffix)
    }

    /// The same with a body as it is (JSON).
    public func forward(
        _ method: HTTPMethod, _ path: String, raw body: ByteBuffer?, for request: Hummingbird.Request, context: GatewayContext,
        key: String? = nil, keySuffix: String? = nil
    ) async throws -> Response {
        var headers = HTTPHeaders()
        // The request's ids (set by RequestObservation) and a new span of its trace.
        let current = EventMetadata.current
        headers.add(name: "X-Request-Id", value: current?.causationID ?? request.headers[.requestID] ?? context.id)
        if let correlation = current?.correlationID { headers.add(name: "X-Correlation-Id", value: correlation) }

        if method != .GET {
            guard let key = key ?? request.headers[.idempotencyKey] else {
                throw Problem.badRequest("missing-idempotency-key", "commands need an Idempotency-Key header (a unique string per intended action)")
            }
            guard (1...100).contains(key.utf8.count) else {
                throw Problem.badRequest("malformed-idempotency-key", "an Idempotency-Key is 1 to 100 printable ASCII characters")
            }
            headers.add(name: "Idempotency-Key", value: Self.downstreamKey(key, of: context.claims?.subject, suffix: keySuffix))
        }
        if body != nil { headers.add(name: "Content-Type", value: "application/json") }
        // The client's precondition goes with its command: the service checks it (a stale or malformed one is a 412 or 400).
        if let ifMatch = request.headers[.ifMatch] { headers.add(name: "If-Match", value: ifMatch) }
        // A client span of the request's trace; the service continues it.
        return try await withSpan("\(method) \(configuration.name)", ofKind: .client) { span in
            span.attributes["shop.downstream"] = configuration.name
            if let trace = span.context.traceContext { headers.replaceOrAdd(name: "traceparent", value: trace.traceparent) }
            let answer = try await send(.init(method: method, path: path, headers: headers, body: body))
            span.attributes["http.response.status_code"] = Int(answer.status.code)
            return answer
        }
    }
}

extension Downstream {
    /// The key a service is sent for a client's `key`: scoped to the signed-in subject (two customers' keys never meet,
    /// however alike: each customer's `1` is their own), then `:suffix` for a second command of one request.
    static func downstreamKey(_ key: String, of subject: String?, suffix: String?) -> String {
        let scoped = "\(subject.map { Wire.digest(Data($0.utf8)) } ?? "anonymous"):\(key)"
        return suffix.map { "\(scoped):\($0)" } ?? scoped
    }
}

extension Downstream.Response {
    /// The body decoded, for a 2xx answer; a 4xx problem is passed on to the client as it is (it is the
    /// client's mistake, told by the service that knows); anything else is a 502.
    public func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try requireSuccess()
        do { return try JSONDecoder.millisecondDates.decode(T.self, from: body) } catch {
            throw Problem(.badGateway, rule: "bad-downstream-answer", title: "A service answered something unexpected", detail: "\(error)")
        }
    }

    public func requireSuccess() throws {
        if (200..<300).contains(status.code) { return }
        if (400..<500).contains(status.code) { throw PassedOn(self) }
        throw Problem(.badGateway, rule: "downstream-error", title: "A service failed", detail: "it answered \(status.code)")
    }
}

/// A service's 4xx answer, passed on to the client unchanged.
public struct PassedOn: Error, PassedOnResponse {
    let answer: Downstream.Response
    init(_ answer: Downstream.Response) { self.answer = answer }
    public var status: HTTPResponse.Status { .init(code: Int(answer.status.code)) }
    /// The service's problem document, as it sent it.
    public var body: ByteBuffer { answer.body }
    public func response(from request: Hummingbird.Request, context: some RequestContext) throws -> Hummingbird.Response {
        var headers: HTTPFields = [.contentType: answer.headers.first(name: "Content-Type") ?? "application/problem+json"]
        if let after = answer.headers.first(name: "Retry-After") { headers[.retryAfter] = after }
        return Hummingbird.Response(status: status, headers: headers, body: .init(byteBuffer: answer.body))
    }
}

extension Downstream.Failure: ProblemConvertible {
    /// 503 with `Retry-After`: the gateway could not reach the service.
    public var problem: Problem {
        let rule = switch self {
        case .busy: "downstream-busy"
        case .open: "downstream-failing"
        case .unavailable: "downstream-unavailable"
        }
        return Problem(.serviceUnavailable, rule: rule, title: "A service is unavailable", detail: description,
                       headers: [.retryAfter: "\(retryAfter.retryAfterSeconds)"])
    }
}
