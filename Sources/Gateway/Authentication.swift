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

extension Problem {
    public static func unauthorised(_ detail: String) -> Problem {
        Problem(.unauthorized, rule: "unauthenticated", title: "Not authenticated", detail: detail,
                headers: [.wwwAuthenticate: #"Bearer realm="shop""#])
    }
}

/// Checks a bearer token if there is one: a valid token's claims go into the context; an invalid one is a 401
/// (a wrong token is never treated as none), given by ``RejectRefusedToken`` after ``RateLimit`` has counted the
/// request against the peer's address. Routes decide whether they need one.
public struct Authenticate: RouterMiddleware {
    public typealias Context = GatewayContext
    let signer: TokenSigner
    let verified = VerifiedTokens()

    public init(signer: TokenSigner) { self.signer = signer }

    public func handle(_ request: Request, context: GatewayContext, next: (Request, GatewayContext) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization] else { return try await next(request, context) }
        var context = context
        if header.lowercased().hasPrefix("bearer ") {
            do {
                context.claims = try await verified.claims(of: String(header.dropFirst("bearer ".count)).trimmingCharacters(in: .whitespaces), signer)
            } catch {
                context.refusedToken = Problem.unauthorised(error.description)
            }
        } else {
            context.refusedToken = Problem.unauthorised("the Authorization header must be 'Bearer <token>'")
        }
        return try await next(request, context)
    }
}

/// Answers 401 for a request whose token ``Authenticate`` refused: after ``RateLimit``.
public struct RejectRefusedToken: RouterMiddleware {
    public typealias Context = GatewayContext
    public init() {}

    public func handle(_ request: Request, context: GatewayContext, next: (Request, GatewayContext) async throws -> Response) async throws -> Response {
        if let refused = context.refusedToken { throw refused }
        return try await next(request, context)
    }
}

/// Tokens already verified, by their exact text (the same text is the same signature), so that a client's every
/// request does not pay for the HMAC and two JSON decodings again; the expiry is still checked each time. At most
/// `capacity` are kept: past that the set starts afresh.
final class VerifiedTokens: Sendable {
    private let tokens = Mutex<[String: Claims]>([:])
    let capacity: Int

    init(capacity: Int = 10_000) { self.capacity = capacity }

    func claims(of token: String, _ signer: TokenSigner, now: Date = Date()) async throws(TokenError) -> Claims {
        if let claims = tokens.withLock({ $0[token] }) {
            guard claims.expiresAt > now else { throw .expired(claims.expiresAt) }
            return claims
        }
        let claims = try await signer.verify(token, now: now)
        tokens.withLock { tokens in
            if tokens.count >= capacity { tokens.removeAll(keepingCapacity: true) }
            tokens[token] = claims
        }
        return claims
    }
}
