import Foundation
import HTTPTypes
import Hummingbird
import Identity

/// The process a request came from, once ``AuthenticateCaller`` has checked its service token: `bff`, `ordering`
/// (the saga and the catalog copy), `shop-admin`. Idempotency keys are scoped to it.
public enum Caller {
    @TaskLocal public static var current: String?
}

/// Lets through only the shop's own processes: every request needs a service token meant for this service
/// (`Authorization: Bearer …`, see ``ServiceIdentity``); anything else is a 401 problem. Routes registered before
/// it (health checks, metrics) stay open to the network the service listens on.
public struct AuthenticateCaller<Context: RequestContext>: RouterMiddleware {
    let identity: ServiceIdentity
    let audience: String

    /// `audience`: this service's name, as its callers address it (`catalog`, `ordering`, `billing`).
    public init(_ identity: ServiceIdentity, audience: String) {
        self.identity = identity
        self.audience = audience
    }

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let caller: String
        do {
            caller = try await identity.caller(request.headers[.authorization], audience: audience)
        } catch {
            throw Problem(.unauthorized, rule: "unauthenticated-caller", title: "Not one of the shop's services",
                          detail: "\(audience) answers the shop's services only, with a service token: \(error.description)",
                          headers: [.wwwAuthenticate: #"Bearer realm="shop-services""#])
        }
        return try await Caller.$current.withValue(caller) { try await next(request, context) }
    }
}
