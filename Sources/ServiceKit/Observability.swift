import Essentials
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Metrics
import Prometheus
import Synchronization
import Telemetry
import Tracing

/// A service's metrics: swift-metrics handles over a Prometheus registry of the service's own (several services
/// share one process in the tests and the benchmarks), served as Prometheus text at `GET /metrics`. Figures that
/// are states rather than events (views' lag, sagas by state, breakers) are read when scraped.
public final class ServiceMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    public let factory: PrometheusMetricsFactory
    private let collectors = Mutex<[@Sendable (ServiceMetrics) async -> Void]>([])

    public init() {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [.milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10), .milliseconds(25),
                                                   .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
                                                   .seconds(2.5), .seconds(5), .seconds(10)]
        self.factory = factory
    }

    public func counter(_ label: String, _ dimensions: [(String, String)] = []) -> Metrics.Counter {
        Metrics.Counter(label: label, dimensions: dimensions, factory: factory)
    }

    public func gauge(_ label: String, _ dimensions: [(String, String)] = []) -> Metrics.Gauge {
        Metrics.Gauge(label: label, dimensions: dimensions, factory: factory)
    }

    public func timer(_ label: String, _ dimensions: [(String, String)] = []) -> Metrics.Timer {
        Metrics.Timer(label: label, dimensions: dimensions, preferredDisplayUnit: .seconds, factory: factory)
    }

    /// Runs `update` before every scrape (to set gauges from the state of things). It is handed these metrics rather
    /// than capturing them: a capture would be a cycle that keeps the metrics, and whatever `update` reads (views'
    /// files, connection pools), alive after the service has stopped.
    public func onScrape(_ update: @escaping @Sendable (ServiceMetrics) async -> Void) {
        collectors.withLock { $0.append(update) }
    }

    /// The Prometheus text, after the scrape-time updates.
    public func scrape() async -> [UInt8] {
        for update in collectors.withLock({ $0 }) { await update(self) }
        return registry.emitToBuffer()
    }

    /// The request observation (first of all middleware), then problem documents, and `GET /metrics`.
    public func install<Context: RequestContext>(on router: Router<Context>) {
        installMiddleware(on: router)
        serve(on: router)
    }

    /// The observation and problem middleware, first of all: for a router that adds its own (authentication)
    /// before it serves `/metrics` with ``serve(on:authorize:)``.
    public func installMiddleware<Context: RequestContext>(on router: Router<Context>) {
        router.middlewares.add(RequestObservation<Context>(metrics: self))
        router.middlewares.add(ProblemMiddleware<Context>())
    }

    /// `GET /metrics`, in Prometheus text.
    ///
    /// - Parameter authorize: who may read them (it throws for anybody else); everybody when `nil`, which a service
    ///   behind the gateway allows (it listens where only the gateway and the operators reach it).
    public func serve<Context: RequestContext>(on router: Router<Context>, authorize: (@Sendable (Context) throws -> Void)? = nil) {
        router.get("/metrics") { _, context in
            try authorize?(context)
            return Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                     body: .init(byteBuffer: ByteBuffer(bytes: await self.scrape())))
        }
    }
}

extension HTTPField.Name {
    public static let correlationID = HTTPField.Name("X-Correlation-Id")!
}

/// The first middleware of every service: who the request is (its request id, the correlation id shared by all
/// that one client request causes, the W3C trace it belongs to), set on the request's logger and as the
/// metadata of every event written while it runs; one log line and the HTTP metrics per request.
public struct RequestObservation<Context: RequestContext>: RouterMiddleware {
    let metrics: ServiceMetrics?

    public init(metrics: ServiceMetrics?) { self.metrics = metrics }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let requestID = request.headers[HTTPField.Name("X-Request-Id")!].flatMap(Self.acceptable) ?? context.id
        let correlationID = request.headers[.correlationID].flatMap(Self.acceptable) ?? requestID
        // A server span continuing the caller's trace (or starting one); without a tracer, the caller's context.
        // (The first traceparent: an HTTP client with a tracer of its own may add its span's after the caller's.)
        let parent = ServiceContext.continuing(request.headers[values: HTTPField.Name("traceparent")!].first)
        return try await withSpan("\(request.method) \(request.uri.path)", context: parent, ofKind: .server) { span in
            let trace = span.context.traceContext ?? parent.traceContext!
            var context = context
            context.logger[metadataKey: "request_id"] = "\(requestID)"
            context.logger[metadataKey: "correlation_id"] = "\(correlationID)"
            context.logger[metadataKey: "trace_id"] = "\(trace.traceID)"
            let metadata = EventMetadata(correlationID: correlationID, causationID: requestID, traceparent: trace.traceparent)
            let started = ContinuousClock.now
            var response: Response
            do {
                response = try await EventMetadata.$current.withValue(metadata) { try await next(request, context) }
            } catch {
                let status = (error as? any HTTPResponseError)?.status.code ?? 500
                record(request, context, span, status: status, since: started)
                throw error
            }
            response.headers[HTTPField.Name("X-Request-Id")!] = requestID
            response.headers[.correlationID] = correlationID
            record(request, context, span, status: response.status.code, since: started)
            return response
        }
    }

    private func record(_ request: Request, _ context: Context, _ span: any Span, status: Int, since started: ContinuousClock.Instant) {
        let elapsed = ContinuousClock.now - started
        let route = context.endpointPath ?? "unmatched"
        span.operationName = "\(request.method) \(route)"
        span.attributes["http.response.status_code"] = status
        if status >= 500 { span.setStatus(.init(code: .error)) }
        let quiet = route.hasPrefix("/health") || route == "/metrics"
        context.logger.log(
            level: status == 500 ? .error : status > 500 ? .warning : quiet ? .debug : .info, "\(request.method) \(request.uri.path) \(status)",
            metadata: ["status": "\(status)", "duration_ms": "\(String(format: "%.1f", Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15))", "route": "\(route)"])
        guard let metrics else { return }
        metrics.counter("http_requests_total", [("method", request.method.rawValue), ("route", route), ("status", "\(status)")]).increment()
        metrics.timer("http_request_duration_seconds", [("method", request.method.rawValue), ("route", route)]).recordInterval(elapsed)
    }

    /// An id from a header: printable, at most 128 characters (anything else is replaced by one of ours).
    static func acceptable(_ text: String) -> String? {
        (1...128).contains(text.count) && text.allSatisfy({ $0.isASCII && !$0.isWhitespace && !$0.isNewline }) ? text : nil
    }
}

extension Metrics.Timer {
    func recordInterval(_ duration: Duration) {
        recordNanoseconds(duration.components.seconds * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000)
    }
}

/// Log lines as JSON objects, one per line: time, level, service, instance, message, and the logger's metadata
/// (request, correlation and trace ids, the order where there is one). `SHOP_LOG_FORMAT=text` gives swift-log's
/// plain lines instead.
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    let service: String
    let instance: String

    public init(service: String, instance: String) {
        self.service = service
        self.instance = instance
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var line: [String: String] = [:]
        for (key, value) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }) { line[key] = "\(value)" }
        // The line's own fields win; metadata of the same name is kept under another.
        for (key, value) in ["time": Self.time(), "level": event.level.rawValue, "service": service, "instance": instance,
                             "message": "\(event.message)"] {
            if let clash = line[key] { line["meta_\(key)"] = clash }
            line[key] = value
        }
        if event.source != "ServiceKit" { line["source"] = event.source }
        guard var data = try? JSONSerialization.data(withJSONObject: line, options: [.sortedKeys, .withoutEscapingSlashes]) else { return }
        data.append(0x0A)
        try? FileHandle.standardError.write(contentsOf: data)
    }

    static func time() -> String {
        let now = Date()
        let milliseconds = Int(now.timeIntervalSince1970 * 1000) % 1000
        return String(Timestamp.iso8601(now).dropLast()) + String(format: ".%03dZ", milliseconds)
    }
}
