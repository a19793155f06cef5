import Foundation
import Synchronization
import Tracing

/// W3C trace context: the trace an operation belongs to and the span it is (`traceparent:
/// 00-<trace id>-<span id>-01`).
public struct TraceContext: Sendable, Hashable {
    public let traceID: String
    public let spanID: String

    public init(traceID: String, spanID: String) {
        self.traceID = traceID
        self.spanID = spanID
    }

    /// Parsed from a `traceparent` header; nil for anything else.
    public init?(traceparent: String?) {
        let parts = traceparent?.split(separator: "-") ?? []
        guard parts.count == 4, parts[1].count == 32, parts[2].count == 16,
            parts[1].allSatisfy(\.isHexDigit), parts[2].allSatisfy(\.isHexDigit),
            parts[1].contains(where: { $0 != "0" }), parts[2].contains(where: { $0 != "0" })
        else { return nil }
        self.init(traceID: String(parts[1]).lowercased(), spanID: String(parts[2]).lowercased())
    }

    /// A new trace.
    public static func root() -> TraceContext { TraceContext(traceID: hex(16), spanID: hex(8)) }

    /// A new span of this trace.
    public func child() -> TraceContext { TraceContext(traceID: traceID, spanID: Self.hex(8)) }

    public var traceparent: String { "00-\(traceID)-\(spanID)-01" }

    static func hex(_ bytes: Int) -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<bytes).map { _ in
            let byte = UInt8.random(in: 0...255, using: &generator)
            return String(format: "%02x", byte)
        }.joined()
    }
}

enum TraceContextKey: ServiceContextKey {
    typealias Value = TraceContext
    static var nameOverride: String? { "traceparent" }
}

extension ServiceContext {
    /// The span this context is in (or, before a span starts, its remote parent).
    public var traceContext: TraceContext? {
        get { self[TraceContextKey.self] }
        set { self[TraceContextKey.self] = newValue }
    }

    /// A context continuing `traceparent`'s trace, or starting a new one.
    public static func continuing(_ traceparent: String?) -> ServiceContext {
        var context = ServiceContext.topLevel
        context.traceContext = TraceContext(traceparent: traceparent) ?? .root()
        return context
    }
}

/// A span once ended: what a sink receives.
public struct FinishedSpan: Sendable {
    public let name: String
    public let kind: SpanKind
    public let context: TraceContext
    public let parentSpanID: String?
    public let start: UInt64, end: UInt64
    public let attributes: [String: String]
    public let failed: Bool
    public let links: [TraceContext]
}

/// The shop's tracer: W3C `traceparent` propagation, spans handed to a sink when they end (the in-memory
/// collector of the tests, or the OTLP exporter). Without it (nothing bootstrapped), swift-distributed-tracing's
/// no-op tracer makes every span free.
public final class ShopTracer: Tracer, Sendable {
    public typealias Span = ShopSpan
    let sink: @Sendable (FinishedSpan) -> Void

    public init(sink: @escaping @Sendable (FinishedSpan) -> Void) { self.sink = sink }

    public func startSpan<Instant: TracerInstant>(
        _ operationName: String, context: @autoclosure () -> ServiceContext, ofKind kind: SpanKind, at instant: @autoclosure () -> Instant,
        function: String, file fileID: String, line: UInt
    ) -> ShopSpan {
        var context = context()
        let parent = context.traceContext
        let own = parent?.child() ?? .root()
        context.traceContext = own
        return ShopSpan(name: operationName, kind: kind, context: context, parent: parent?.spanID, start: instant().nanosecondsSinceEpoch, sink: sink)
    }

    public func forceFlush() {}

    public func extract<Carrier, Extract>(_ carrier: Carrier, into context: inout ServiceContext, using extractor: Extract)
    where Extract: Extractor, Extract.Carrier == Carrier {
        if let parent = TraceContext(traceparent: extractor.extract(key: "traceparent", from: carrier)) { context.traceContext = parent }
    }

    public func inject<Carrier, Inject>(_ context: ServiceContext, into carrier: inout Carrier, using injector: Inject)
    where Inject: Injector, Inject.Carrier == Carrier {
        if let own = context.traceContext { injector.inject(own.traceparent, forKey: "traceparent", into: &carrier) }
    }
}

public final class ShopSpan: Tracing.Span, Sendable {
    public let context: ServiceContext
    let kind: SpanKind, parent: String?, start: UInt64
    let sink: @Sendable (FinishedSpan) -> Void
    private struct State {
        var name: String
        var attributes: SpanAttributes = [:]
        var failed = false
        var links: [TraceContext] = []
        var ended = false
    }
    private let state: Mutex<State>

    init(name: String, kind: SpanKind, context: ServiceContext, parent: String?, start: UInt64, sink: @escaping @Sendable (FinishedSpan) -> Void) {
        self.context = context
        self.kind = kind
        self.parent = parent
        self.start = start
        self.sink = sink
        state = Mutex(State(name: name))
    }

    public var operationName: String {
        get { state.withLock { $0.name } }
        set { state.withLock { $0.name = newValue } }
    }
    public var attributes: SpanAttributes {
        get { state.withLock { $0.attributes } }
        set { state.withLock { $0.attributes = newValue } }
    }
    public var isRecording: Bool { state.withLock { !$0.ended } }
    public func setStatus(_ status: SpanStatus) { if status.code == .error { state.withLock { $0.failed = true } } }
    public func addEvent(_ event: SpanEvent) {}
    public func recordError<Instant: TracerInstant>(_ error: any Error, attributes: SpanAttributes, at instant: @autoclosure () -> Instant) {
        state.withLock { $0.failed = true }
    }
    public func addLink(_ link: SpanLink) {
        if let linked = link.context.traceContext { state.withLock { $0.links.append(linked) } }
    }

    public func end<Instant: TracerInstant>(at instant: @autoclosure () -> Instant) {
        let end = instant().nanosecondsSinceEpoch
        guard let finished = state.withLock({ state -> FinishedSpan? in
            guard !state.ended else { return nil }
            state.ended = true
            var attributes: [String: String] = [:]
            state.attributes.forEach { key, value in attributes[key] = render(value) }
            return FinishedSpan(name: state.name, kind: kind, context: context.traceContext!, parentSpanID: parent, start: start, end: end,
                                attributes: attributes, failed: state.failed, links: state.links)
        }) else { return }
        sink(finished)
    }
}

/// Spans kept in memory: for tests.
public final class SpanCollector: Sendable {
    private let spans = Mutex<[FinishedSpan]>([])
    public init() {}
    public func collect(_ span: FinishedSpan) { spans.withLock { $0.append(span) } }
    /// The spans of one trace, in the order they ended.
    public func trace(_ traceID: String) -> [FinishedSpan] { spans.withLock { $0.filter { $0.context.traceID == traceID } } }
}

func render(_ attribute: SpanAttribute) -> String {
    switch attribute {
    case .string(let value): value
    case .int64(let value): "\(value)"
    case .int32(let value): "\(value)"
    case .double(let value): "\(value)"
    case .bool(let value): "\(value)"
    default: "(list)"
    }
}
