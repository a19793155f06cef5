import Foundation
import JWTKit
import Synchronization

/// What a service's token says: which service calls (`sub`), the one service it may call with it (`aud`), and
/// until when. Customers' tokens are signed with another secret, and carry no audience: neither passes for the other.
public struct ServiceClaims: JWTPayload, Equatable {
    public let caller: String
    public let audience: String
    public let issuedAt: Date
    public let expiresAt: Date

    public init(caller: String, audience: String, issuedAt: Date, expiresAt: Date) {
        self.caller = caller
        self.audience = audience
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
    }

    enum CodingKeys: String, CodingKey { case caller = "sub", audience = "aud", issuedAt = "iat", expiresAt = "exp" }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        caller = try container.decode(String.self, forKey: .caller)
        audience = try container.decode(String.self, forKey: .audience)
        issuedAt = try TimeClaim.decode(container, .issuedAt)
        expiresAt = try TimeClaim.decode(container, .expiresAt)
        guard ServiceIdentity.isName(caller) else {
            throw DecodingError.dataCorruptedError(forKey: .caller, in: container, debugDescription: "not a service's name")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(caller, forKey: .caller)
        try container.encode(audience, forKey: .audience)
        try TimeClaim.encode(issuedAt, &container, .issuedAt)
        try TimeClaim.encode(expiresAt, &container, .expiresAt)
    }

    public func verify(using algorithm: some JWTAlgorithm) async throws {}
}

/// A process's identity toward the shop's services. It signs a short-lived token for each service it calls, and
/// verifies the tokens of the processes calling it. The shop's processes share one secret, `$SHOP_SERVICE_SECRET`,
/// apart from the customers' token secret (docs/security.md says why one secret, and what a mesh would add).
public final class ServiceIdentity: Sendable {
    /// This process's name as a caller: `bff`, `ordering`, `shop-admin`, …
    public let name: String
    let signer: TokenSigner
    private let issued = Mutex<[String: ServiceClaims.Issued]>([:])
    private let verified = Mutex<[String: ServiceClaims]>([:])

    /// How long a token is good for; a caller signs a new one when less than a fifth is left.
    public static let lifetime: TimeInterval = 300

    public init(name: String, secret: Data) async throws {
        precondition(Self.isName(name), "a service's name is lower-case letters and dashes")
        self.name = name
        signer = try await TokenSigner(secret: secret)
    }

    /// Lower-case ASCII letters and dashes, 1 to 40: a caller's name is part of its idempotency keys' scope.
    static func isName(_ text: String) -> Bool {
        (1...40).contains(text.utf8.count) && text.utf8.allSatisfy { (UInt8(ascii: "a")...UInt8(ascii: "z")).contains($0) || $0 == UInt8(ascii: "-") }
    }

    /// The `Authorization` header's value for a request to `audience`.
    public func authorization(to audience: String, now: Date = Date()) async throws -> String {
        if let kept = issued.withLock({ $0[audience] }), kept.renewAt > now { return kept.header }
        let claims = ServiceClaims(caller: name, audience: audience, issuedAt: now, expiresAt: now + Self.lifetime)
        let fresh = ServiceClaims.Issued(header: "Bearer " + (try await signer.issue(claims)), renewAt: now + Self.lifetime * 0.8)
        issued.withLock { $0[audience] = fresh }
        return fresh.header
    }

    /// The name of the process that sent `authorization`, a bearer token for this service (`audience`).
    public func caller(_ authorization: String?, audience: String, now: Date = Date()) async throws(TokenError) -> String {
        guard let authorization, authorization.hasPrefix("Bearer ") else { throw .malformed }
        let token = String(authorization.dropFirst(7))
        let claims: ServiceClaims
        if let kept = verified.withLock({ $0[token] }) {
            claims = kept
        } else {
            claims = try await signer.verified(token)
            verified.withLock { verified in
                if verified.count >= 1_000 { verified.removeAll(keepingCapacity: true) }
                verified[token] = claims
            }
        }
        guard claims.expiresAt > now else { throw .expired(claims.expiresAt) }
        guard claims.audience == audience else { throw .wrongAudience(claims.audience) }
        return claims.caller
    }
}

extension ServiceClaims {
    struct Issued: Sendable {
        let header: String
        let renewAt: Date
    }
}
