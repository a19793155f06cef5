import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import ShopSupport
import Telemetry
import Tracing
import TestSupport
import Synchronization
import Testing

/// Prometheus text exposition, parsed: each sample's name with its labels (as written) and value. Fails on a
/// line that is neither a comment nor a sample.
func samples(_ text: String) throws -> [String: Double] {
    var samples: [String: Double] = [:]
    for line in text.split(separator: "\n") where !line.hasPrefix("#") {
        guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]),
            line[..<space].range(of: #"^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"]*",?)*\})?$"#, options: .regularExpression) != nil
        else { throw TestSetupError("not a Prometheus sample: \(line)") }
        samples[String(line[..<space])] = value
    }
    return samples
}

extension TestClientProtocol {
    /// `/metrics`, parsed; `token` for the BFF's, which only an admin reads.
    func metrics(token: String? = nil) async throws -> [String: Double] {
        let response = try await execute(uri: "/metrics", method: .get, headers: token.map { [.authorization: "Bearer \($0)"] } ?? [:])
        #expect(response.status == .ok && response.headers[.contentType]?.hasPrefix("text/plain") == true)
        return try samples(String(buffer: response.body))
    }
}

/// The value of the first sample named `name` whose labels include all of `labels`.
func value(_ samples: [String: Double], _ name: String, _ labels: [String] = []) -> Double? {
    samples.first { key, _ in (key == name || key.hasPrefix(name + "{")) && labels.allSatisfy { key.contains($0) } }?.value
}

@Suite("Observability: metrics")
struct MetricsTests {
    @Test func everyServiceServesPrometheusTextWhoseCountersMoveWithTraffic() async throws {
        try await withBFF { shop, bff in
            try await shop.product("MUG-001", price: 1250, stock: 5)
            let before = try await shop.catalog.metrics()
            let listed = value(before, "http_requests_total", [#"route="/products/{sku}""#, #"status="200""#]) ?? 0
            for _ in 0..<3 { _ = try await shop.catalog.execute(uri: "/products/MUG-001", method: .get) }
            let after = try await shop.catalog.metrics()
            #expect(value(after, "http_requests_total", [#"route="/products/{sku}""#, #"status="200""#]) == listed + 3)
            #expect(value(after, "http_request_duration_seconds_count", [#"route="/products/{sku}""#]) ?? 0 >= 3)
            #expect(value(after, "projector_lag_events", [#"view="catalog-product-listing""#]) != nil)

            // A checkout through the BFF moves Ordering's saga figures and the BFF's own.
            let kim = await token("kim")
            try await within(.seconds(20), "Ordering's copy of the catalog") {
                while try await bff.call(.post, "/cli/v1/cart/items", #"{"sku":"MUG-001","quantity":1}"#, token: kim).status != .ok {
                    try await Task.sleep(for: .milliseconds(20))
                }
            }
            #expect(try await bff.call(.post, "/cli/v1/checkout", #"{"card":"4242424242424242"}"#, token: kim).object["status"] as? String == "confirmed")
            try await within(.seconds(20), "the saga completed, as the metrics say") {
                while value(try await shop.ordering.metrics(), "saga_instances", [#"status="completed""#]) != 1 {}
            }
            let ordering = try await shop.ordering.metrics()
            #expect(value(ordering, "saga_step_duration_seconds_count", [#"step="capture-payment""#]) == 1)
            #expect(value(ordering, "http_requests_total", [#"route="/carts/{customer}/checkout""#, #"status="201""#]) == 1)
            let billing = try await shop.billing.metrics()
            #expect(value(billing, "http_requests_total", [#"route="/payments/{order}/authorise""#]) == 1)

            // The BFF's are an admin's: a customer or nobody is refused.
            #expect(try await bff.call(.get, "/metrics", token: nil).status == .unauthorized)
            #expect(try await bff.call(.get, "/metrics", token: kim).status == .forbidden)
            let gateway = try await bff.metrics(token: token("ops", .admin))
            #expect(value(gateway, "circuit_breaker_state", [#"service="catalog""#, #"state="closed""#]) == 1)
            #expect(value(gateway, "bulkhead_in_flight", [#"service="ordering""#]) == 0)
            #expect(value(gateway, "http_requests_total", [#"route="/cli/v1/checkout""#, #"status="200""#]) == 1)
        }
        try await withBFF(rate: 0.01, burst: 1) { _, bff in
            _ = try await bff.call(.get, "/cli/v1/cart", token: token("ann"))
            #expect(try await bff.call(.get, "/cli/v1/cart", token: token("ann")).status == .tooManyRequests)
            #expect(value(try await bff.metrics(token: token("ops", .admin)), "ratelimit_rejections_total", [#"client_kind="customer""#]) == 1)
        }
    }

    @Test func aResponseNamesItsRequestAndCorrelationAndPassesTheCorrelationOn() async throws {
        try await withBFF { shop, bff in
            let answer = try await bff.execute(uri: "/cli/v1/products", method: .get,
                                               headers: [HTTPField.Name("X-Correlation-Id")!: "c-test-1", HTTPField.Name("X-Request-Id")!: "r-1"])
            #expect(answer.headers[HTTPField.Name("X-Correlation-Id")!] == "c-test-1" && answer.headers[HTTPField.Name("X-Request-Id")!] == "r-1")
            let own = try await bff.execute(uri: "/cli/v1/products", method: .get, headers: [HTTPField.Name("X-Correlation-Id")!: "bad id with spaces"])
            #expect(own.headers[HTTPField.Name("X-Correlation-Id")!].map { !$0.contains(" ") } == true)
            _ = shop
        }
    }
}

/// The tracer of this test process: bootstrapped once, the first time a test asks for it; every test after
/// that is traced too (each test reads only its own trace).
let spans: SpanCollector = {
    let collector = SpanCollector()
    InstrumentationSystem.bootstrap(ShopTracer(sink: collector.collect))
    return collector
}()

@Suite("Observability: traces")
struct TracingTests {
    @Test(.timeLimit(.minutes(2)))
    func oneCheckoutIsOneTraceAcrossTheBFFTheServicesTheSagaAndTheProjectors() async throws {
        let collector = spans
        try await withBFF { shop, bff in
            try await shop.product("MUG-001", price: 1250, stock: 5)
            let root = TraceContext.root()
            let kim = await token("kim")
            @Sendable func traced(_ method: HTTPRequest.Method, _ uri: String, _ json: String) async throws -> TestResponse {
                try await bff.execute(uri: uri, method: method, headers: [
                    .authorization: "Bearer \(kim)", .contentType: "application/json", HTTPField.Name("Idempotency-Key")!: UUID().uuidString,
                    HTTPField.Name("traceparent")!: root.traceparent,
                ], body: ByteBuffer(string: json))
            }
            try await within(.seconds(20), "Ordering's copy of the catalog") {
                while try await traced(.post, "/cli/v1/cart/items", #"{"sku":"MUG-001","quantity":1}"#).status != .ok {
                    try await Task.sleep(for: .milliseconds(20))
                }
            }
            #expect(try await traced(.post, "/cli/v1/checkout", #"{"card":"4242424242424242"}"#).object["status"] as? String == "confirmed")

            let trace = try await within(.seconds(20), "the saga's last step and the projectors' batches in the trace") {
                while true {
                    let trace = collector.trace(root.traceID)
                    let names = Set(trace.map(\.name))
                    if names.contains("saga capture-payment"), names.contains("POST /payments/{order}/capture"),
                        names.contains("project ordering-order-history"), names.contains("project billing-payment-ledger") {
                        return trace
                    }
                    try await Task.sleep(for: .milliseconds(10))  // spans end on other tasks; nothing to await
                }
            }
            let byID = Dictionary(trace.map { ($0.context.spanID, $0) }, uniquingKeysWith: { first, _ in first })
            func parent(of span: FinishedSpan) -> FinishedSpan? { span.parentSpanID.flatMap { byID[$0] } }
            func one(_ name: String, _ kind: SpanKind) throws -> FinishedSpan {
                let found = trace.filter { $0.name == name && $0.kind == kind }
                #expect(found.count >= 1, "no \(kind) span \(name) in \(trace.map(\.name))")
                return try #require(found.first)
            }
            // The BFF's server span continues the client's context.
            let checkout = try one("POST /cli/v1/checkout", .server)
            #expect(checkout.parentSpanID == root.spanID)
            // Ordering's checkout is the child of the BFF's call to Ordering.
            let placed = try one("POST /carts/{customer}/checkout", .server)
            #expect(parent(of: placed)?.name == "POST ordering" && parent(of: parent(of: placed)!)?.context == checkout.context)
            // Each saga step continues the checkout's trace, under Ordering's checkout; its calls are its children, and
            // the services' server spans theirs.
            for step in ["reserve-stock", "authorise-payment", "commit-stock", "capture-payment"] {
                let saga = try one("saga \(step)", .internal)
                #expect(saga.parentSpanID == placed.context.spanID, "saga \(step)")
                #expect(trace.contains { $0.kind == .client && $0.parentSpanID == saga.context.spanID }, "the call of saga \(step)")
            }
            for (name, service) in [("POST /reservations", "catalog"), ("POST /payments/{order}/authorise", "billing")] {
                let served = try one(name, .server)
                let call = try #require(parent(of: served), "\(name) has no parent in the trace")
                #expect(call.kind == .client && call.name == "POST \(service)" && parent(of: call)?.name.hasPrefix("saga ") == true)
            }
            // Appends and projector batches: children of the request whose events they write or read.
            #expect(trace.contains { $0.name == "append order" && parent(of: $0) != nil })
            for view in ["ordering-order-history", "billing-payment-ledger"] {
                let batch = try one("project \(view)", .consumer)
                #expect(parent(of: batch)?.kind == .server || parent(of: batch)?.kind == .internal, "project \(view)")
            }
            // Every span but the BFF's has its parent in the trace.
            #expect(trace.filter { $0.parentSpanID != root.spanID && parent(of: $0) == nil }.isEmpty,
                    "orphans: \(trace.filter { $0.parentSpanID != root.spanID && parent(of: $0) == nil }.map(\.name))")
        }
    }
}

@Suite("Observability: the OTLP exporter")
struct ExporterTests {
    @Test func spansArePostedToTheCollectorAsOTLPJSONAndAFullQueueDrops() async throws {
        let received = Mutex<[Data]>([])
        let router = Router()
        router.post("/v1/traces") { request, _ -> HTTPResponse.Status in
            let body = try await request.body.collect(upTo: 1 << 20)
            received.withLock { $0.append(Data(buffer: body)) }
            return .ok
        }
        try await Application(router: router).test(.live) { collector in
            let exporter = OTLPExporter(endpoint: "http://127.0.0.1:\(try #require(collector.port))/", service: "ordering", capacity: 2,
                                        logger: TestDatabase.logger)
            let tracer = ShopTracer(sink: exporter.export)
            let root = TraceContext.root()
            tracer.withSpan("parent", context: .continuing(root.traceparent), ofKind: .server) { parent in
                parent.attributes["http.response.status_code"] = 201
                tracer.withSpan("child", context: parent.context, ofKind: .client) { _ in }
            }
            tracer.withSpan("over capacity", context: .continuing(root.traceparent)) { _ in }
            await exporter.flush()
            let bodies = received.withLock { $0 }
            #expect(bodies.count == 1)
            let body = try #require(bodies.first)
            let document = try #require(try JSONSerialization.jsonObject(with: body) as? [String: Any])
            let resource = try #require((document["resourceSpans"] as? [[String: Any]])?.first)
            #expect(((resource["resource"] as? [String: Any])?["attributes"] as? [[String: Any]])?.first?["key"] as? String == "service.name")
            let spans = try #require(((resource["scopeSpans"] as? [[String: Any]])?.first?["spans"]) as? [[String: Any]])
            #expect(spans.map { $0["name"] as? String } == ["child", "parent"], "ended in this order; the third was dropped")
            let child = spans[0], parent = spans[1]
            #expect(child["traceId"] as? String == root.traceID && parent["traceId"] as? String == root.traceID)
            #expect(parent["parentSpanId"] as? String == root.spanID && child["parentSpanId"] as? String == parent["spanId"] as? String)
            #expect(parent["kind"] as? Int == 2 && child["kind"] as? Int == 3)
            #expect(UInt64(parent["startTimeUnixNano"] as? String ?? "") ?? 0 <= UInt64(child["startTimeUnixNano"] as? String ?? "") ?? 0)
            await exporter.flush()
            #expect(received.withLock { $0.count } == 1, "nothing more to send")
        }
    }
}
