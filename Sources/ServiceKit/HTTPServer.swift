import HTTPTypes
import HummingbirdCore
import NIOCore
import NIOHTTP1
import NIOHTTPTypes

/// How every server of the shop takes connections: HTTP/1.1; a connection that has sent nothing for `idleTimeout`
/// while no request of it is being answered is closed; and a request must arrive whole within `readTimeout` of the
/// connection opening or the previous response ending (408). Without them, a client that opened connections and
/// sent nothing, or a byte now and then, held them for ever. A request the HTTP parser refuses (a malformed request
/// line or header, headers over the limits) gets a problem document like any other refusal.
public enum ShopHTTPServer {
    public static let idleTimeout = Duration.seconds(30)
    public static let readTimeout = Duration.seconds(30)

    public static func http1(idleTimeout: Duration = idleTimeout, readTimeout: Duration = readTimeout) -> HTTPServerBuilder {
        let read = TimeAmount(readTimeout)
        return .http1(configuration: .init(
            additionalChannelHandlers: [MalformedRequestProblem(), ReadDeadline(read)],
            idleTimeout: TimeAmount(idleTimeout)))
    }
}

/// A server's configuration with its connections' timeout (``ShopHTTPServer``'s idle and read timeouts).
public protocol ConnectionTimeoutConfigurable {
    var connectionTimeout: Duration { get set }
}

extension TimeAmount {
    init(_ duration: Duration) {
        self = .nanoseconds(Int64(duration.components.seconds) * 1_000_000_000 + duration.components.attoseconds / 1_000_000_000)
    }
}

/// Closes a connection whose request has not arrived whole `limit` after the connection opened or the previous
/// response ended: with a 408 problem document if not even its head has come, else without a word (the server is
/// reading its body, and may not answer twice). A client sending a byte now and then kept a connection for ever.
final class ReadDeadline: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    let limit: TimeAmount
    private var deadline: Scheduled<Void>?
    private var headArrived = false

    init(_ limit: TimeAmount) { self.limit = limit }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { arm(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        arm(context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head: headArrived = true
        case .end: deadline?.cancel()
        case .body: break
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) {
            headArrived = false
            arm(context)
        }
        context.write(data, promise: promise)
    }

    private func arm(_ context: ChannelHandlerContext) {
        deadline?.cancel()
        let bound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        deadline = context.eventLoop.scheduleTask(in: limit) { bound.value.handler.expired(bound.value.context) }
    }

    private func expired(_ context: ChannelHandlerContext) {
        guard !headArrived else { return context.close(promise: nil) }
        let problem = Problem(.requestTimeout, rule: "request-timeout", title: "The request did not arrive in time",
                              detail: "a request must arrive whole within \(limit.nanoseconds / 1_000_000_000) s")
        let body = ByteBuffer(bytes: problem.body)
        context.write(wrapOutboundOut(.head(HTTPResponse(status: .requestTimeout, headerFields: [
            .contentType: "application/problem+json", .contentLength: "\(body.readableBytes)", .connection: "close",
        ]))), promise: nil)
        context.write(wrapOutboundOut(.body(body)), promise: nil)
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in bound.value.close(promise: nil) }
    }
}

/// Answers a request that NIO's HTTP parser refused with a problem document, then closes the connection: 431 for
/// headers over the limits, 400 for anything else. Left alone, the server answered an empty 400. Only between
/// requests: while a response is being written, the error goes on to the server, which ends that exchange.
final class MalformedRequestProblem: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// A request has started and its response has not ended.
    private var exchanging = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head = unwrapInboundIn(data) { exchanging = true }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { exchanging = false }
        context.write(data, promise: promise)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parse = error as? HTTPParserError, !exchanging else { return context.fireErrorCaught(error) }
        let problem = Self.problem(parse)
        let body = ByteBuffer(bytes: problem.body)
        let head = HTTPResponse(status: problem.status, headerFields: [
            .contentType: "application/problem+json", .contentLength: "\(body.readableBytes)", .connection: "close",
        ])
        exchanging = true
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(body)), promise: nil)
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in bound.value.close(promise: nil) }
    }

    static func problem(_ error: HTTPParserError) -> Problem {
        switch error {
        case .headerOverflow:
            Problem(.requestHeaderFieldsTooLarge, rule: "headers-too-large", title: "The request's headers are too large",
                    detail: "the request's header fields are over the server's limits")
        default:
            Problem.badRequest("malformed-http", "the request is not valid HTTP/1.1 (\(error))")
        }
    }
}
