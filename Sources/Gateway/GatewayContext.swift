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
import ServiceKit
import Synchronization

/// The request context of the BFFs: who is asking (from the bearer token, once checked), and from where.
public struct GatewayContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The checked token's claims; `nil` for an anonymous request.
    public var claims: Claims?
    /// Why the request's token was refused, if it was: the request is answered 401 once the rate limit has counted
    /// it (by the peer's address), so that a stream of bad tokens is limited like any other.
    public var refusedToken: Problem?
    /// The peer's address, for rate limits of anonymous clients.
    public let peer: String

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        peer = source.channel.remoteAddress?.ipAddress ?? "unknown"
    }

    /// The customer the request speaks for: 401 without a valid token, 403 for an admin token (admins act
    /// through the back-office routes).
    public func customer() throws -> String {
        guard let claims else { throw Problem.unauthorised("this route needs a bearer token: Authorization: Bearer <token>") }
        guard claims.role == .customer else {
            throw Problem(.forbidden, rule: "customer-only", title: "Customers only", detail: "this route acts for a customer")
        }
        return claims.subject
    }

    /// The admin the request speaks for: 401 without a valid token, 403 without the admin role.
    public func admin() throws -> String {
        guard let claims else { throw Problem.unauthorised("this route needs a bearer token: Authorization: Bearer <token>") }
        guard claims.role == .admin else {
            throw Problem(.forbidden, rule: "admin-only", title: "Admins only", detail: "this route needs the admin role")
        }
        return claims.subject
    }

    /// Who the rate limit counts this request against.
    public var client: String { claims.map { "\($0.role):\($0.subject)" } ?? "peer:\(peer)" }
}

extension HTTPField.Name {
    public static let requestID = HTTPField.Name("X-Request-Id")!
    public static let traceparent = HTTPField.Name("traceparent")!
}
