import HummingbirdCore
import NIOCore

/// How every server of the shop takes connections: HTTP/1.1, and a connection that has sent nothing for
/// `idleTimeout` while no request of it is being answered is closed. Without it, a client that opened connections
/// and sent nothing (or stopped halfway through a request) held them for ever.
public enum ShopHTTPServer {
    public static let idleTimeout = Duration.seconds(30)

    public static func http1(idleTimeout: Duration = idleTimeout) -> HTTPServerBuilder {
        .http1(configuration: .init(idleTimeout: .nanoseconds(Int64(idleTimeout.components.seconds) * 1_000_000_000
                                                              + idleTimeout.components.attoseconds / 1_000_000_000)))
    }
}
