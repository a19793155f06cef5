import HTTPTypes
import HummingbirdCore
import NIOCore
import NIOHTTP1
import NIOHTTPTypes

/// How every server of the shop takes connections: HTTP/1.1, and a connection that has sent nothing for
/// `idleTimeout` while no request of it is being answered is closed. Without it, a client that opened connections
/// and sent nothing (or stopped halfway through a request) held them for ever. A request the HTTP parser refuses
/// (a malformed request line or header, headers over the limits) gets a problem document like any other refusal.
public enum ShopHTTPServer {
    public static let idleTimeout = Duration.seconds(30)

    public static func http1(idleTimeout: Duration = idleTimeout) -> HTTPServerBuilder {
        .http1(configuration: .init(
            additionalChannelHandlers: [MalformedRequestProblem()],
            idleTimeout: .nanoseconds(Int64(idleTimeout.components.seconds) * 1_000_000_000 + idleTimeout.components.attoseconds / 1_000_000_000)))
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
