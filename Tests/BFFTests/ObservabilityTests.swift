import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import ShopSupport
import TestSupport
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
    func metrics() async throws -> [String: Double] {
        let response = try await execute(uri: "/metrics", method: .get)
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
            let kim = token("kim")
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

            let gateway = try await bff.metrics()
            #expect(value(gateway, "circuit_breaker_state", [#"service="catalog""#, #"state="closed""#]) == 1)
            #expect(value(gateway, "bulkhead_in_flight", [#"service="ordering""#]) == 0)
            #expect(value(gateway, "http_requests_total", [#"route="/cli/v1/checkout""#, #"status="200""#]) == 1)
        }
        try await withBFF(rate: 0.01, burst: 1) { _, bff in
            _ = try await bff.call(.get, "/cli/v1/cart", token: token("ann"))
            #expect(try await bff.call(.get, "/cli/v1/cart", token: token("ann")).status == .tooManyRequests)
            #expect(value(try await bff.metrics(), "ratelimit_rejections_total", [#"client_kind="customer""#]) == 1)
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
