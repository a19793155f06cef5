import AsyncHTTPClient
import Foundation
import Logging
import NIOCore
import NIOFoundationCompat
import ServiceLifecycle
import Synchronization
import Tracing

/// Sends finished spans to an OpenTelemetry collector over OTLP/HTTP with JSON (`POST <endpoint>/v1/traces`),
/// in batches, once a second. At most `capacity` spans wait; past that, spans are dropped and counted (a
/// collector that is down must not grow the service's memory). Switched on by `SHOP_OTLP_ENDPOINT`.
public final class OTLPExporter: Service, Sendable {
    let endpoint: String
    let service: String
    let capacity: Int
    let logger: Logger
    private let pending = Mutex<(spans: [FinishedSpan], dropped: Int)>(([], 0))

    public init(endpoint: String, service: String, capacity: Int = 10_000, logger: Logger) {
        self.endpoint = endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint
        self.service = service
        self.capacity = capacity
        self.logger = logger
    }

    public func export(_ span: FinishedSpan) {
        pending.withLock { pending in
            if pending.spans.count < capacity { pending.spans.append(span) } else { pending.dropped += 1 }
        }
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                await self.flush()
            }
        }
        await flush()
    }

    public func flush() async {
        let (spans, dropped) = pending.withLock { pending in
            defer { pending = ([], 0) }
            return pending
        }
        if dropped > 0 { logger.warning("spans dropped: the collector does not keep up", metadata: ["dropped": "\(dropped)"]) }
        guard !spans.isEmpty else { return }
        do {
            var request = HTTPClientRequest(url: endpoint + "/v1/traces")
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(data: try JSONSerialization.data(withJSONObject: document(spans))))
            let response = try await HTTPClient.shared.execute(request, timeout: .seconds(5))
            _ = try await response.body.collect(upTo: 1 << 20)
            if response.status.code >= 300 { logger.warning("the collector refused spans", metadata: ["status": "\(response.status.code)"]) }
        } catch {
            logger.warning("cannot reach the collector", metadata: ["endpoint": "\(endpoint)", "error": "\(error)"])
        }
    }

    /// OTLP/JSON (trace and span ids as hex, times as strings of nanoseconds).
    func document(_ spans: [FinishedSpan]) -> [String: Any] {
        func kind(_ kind: SpanKind) -> Int {
            switch kind {
            case .internal: 1
            case .server: 2
            case .client: 3
            case .producer: 4
            case .consumer: 5
            }
        }
        let encoded: [[String: Any]] = spans.map { span in
            var item: [String: Any] = [
                "traceId": span.context.traceID, "spanId": span.context.spanID, "name": span.name, "kind": kind(span.kind),
                "startTimeUnixNano": "\(span.start)", "endTimeUnixNano": "\(span.end)",
                "attributes": span.attributes.map { ["key": $0.key, "value": ["stringValue": $0.value]] },
                "status": ["code": span.failed ? 2 : 1],
            ]
            if let parent = span.parentSpanID { item["parentSpanId"] = parent }
            if !span.links.isEmpty { item["links"] = span.links.map { ["traceId": $0.traceID, "spanId": $0.spanID] } }
            return item
        }
        return ["resourceSpans": [[
            "resource": ["attributes": [["key": "service.name", "value": ["stringValue": service]]]],
            "scopeSpans": [["scope": ["name": "swift-shop"], "spans": encoded]],
        ]]]
    }
}
