import Foundation
import JWTKit

/// Who a customer's or an admin's bearer token speaks for.
public struct Claims: JWTPayload, Equatable {
    public enum Role: String, Codable, Sendable { case customer, admin }

    /// The customer's id, or the admin's name.
    public let subject: String
    public let role: Role
    public let issuedAt: Date
    public let expiresAt: Date

    public init(subject: String, role: Role, issuedAt: Date, expiresAt: Date) {
        self.subject = subject
        self.role = role
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
    }

    enum CodingKeys: String, CodingKey { case subject = "sub", role, issuedAt = "iat", expiresAt = "exp" }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        subject = try container.decode(String.self, forKey: .subject)
        role = try container.decode(Role.self, forKey: .role)
        issuedAt = try TimeClaim.decode(container, .issuedAt)
        expiresAt = try TimeClaim.decode(container, .expiresAt)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(subject, forKey: .subject)
        try container.encode(role, forKey: .role)
        try TimeClaim.encode(issuedAt, &container, .issuedAt)
        try TimeClaim.encode(expiresAt, &container, .expiresAt)
    }

    /// The expiry is checked by ``TokenSigner/verify(_:now:)``, against the time it is given.
    public func verify(using algorithm: some JWTAlgorithm) async throws {}
}

/// `iat` and `exp`: seconds since 1970, whole or fractional, read within bounds. A validly signed token is still
/// input: `exp: 1e300` made a date that crashed the process when it was encoded again.
enum TimeClaim {
    /// The latest time a token may name: 2^33 s after 1970 (the year 2242).
    static let latestSeconds: Double = 8_589_934_592

    static func decode<Key: CodingKey>(_ container: KeyedDecodingContainer<Key>, _ key: Key) throws -> Date {
        let seconds = try container.decode(Double.self, forKey: key)
        guard seconds.isFinite, (0...latestSeconds).contains(seconds) else {
            throw DecodingError.dataCorruptedError(forKey: key, in: container, debugDescription: "\(key.stringValue) is not a time between 1970 and 2242")
        }
        return Date(timeIntervalSince1970: seconds)
    }

    static func encode<Key: CodingKey>(_ date: Date, _ container: inout KeyedEncodingContainer<Key>, _ key: Key) throws {
        try container.encode(Int64(date.timeIntervalSince1970.clamped(0, latestSeconds)), forKey: key)
    }
}

extension Double {
    func clamped(_ low: Double, _ high: Double) -> Double { Swift.min(Swift.max(self, low), high) }
}

public enum TokenError: Error, Equatable, CustomStringConvertible {
    case malformed
    case unsupportedAlgorithm(String)
    case badSignature
    case expired(Date)
    /// A service token meant for another service.
    case wrongAudience(String)

    public var description: String {
        switch self {
        case .malformed: "the bearer token is not a JWT"
        case .unsupportedAlgorithm(let name): "the bearer token is signed with \(name.prefix(20)); only HS256 is accepted"
        case .badSignature: "the bearer token's signature does not match"
        case .expired(let date): "the bearer token expired at \(date.formatted(.iso8601))"
        case .wrongAudience(let audience): "the bearer token is meant for \(audience.prefix(40)), not for this service"
        }
    }
}

/// Signs and verifies JWTs with HMAC-SHA256 (HS256) and one secret key, with vapor/jwt-kit. A token whose header
/// names another algorithm (`none` among them) is refused before its signature is looked at. The expiry is checked
/// against the time given, so that tests can move it.
public struct TokenSigner: Sendable {
    let keys: JWTKeyCollection

    /// `secret` must be at least 32 bytes (the size of the hash).
    public init(secret: Data) async throws {
        guard secret.count >= 32 else { throw TokenSignerError.weakSecret(secret.count) }
        keys = JWTKeyCollection()
        await keys.add(hmac: HMACKey(from: secret), digestAlgorithm: .sha256)
    }

    public enum TokenSignerError: Error, Equatable, CustomStringConvertible {
        case weakSecret(Int)
        public var description: String {
            switch self { case .weakSecret(let count): "the token secret has \(count) bytes; it needs at least 32" }
        }
    }

    public func issue(_ claims: some JWTPayload) async throws -> String {
        try await keys.sign(claims)
    }

    public func verify(_ token: String, now: Date = Date()) async throws(TokenError) -> Claims {
        let claims: Claims = try await verified(token)
        guard claims.expiresAt > now else { throw .expired(claims.expiresAt) }
        return claims
    }

    /// The token's payload, once its header names HS256 and its signature holds.
    func verified<Payload: JWTPayload>(_ token: String) async throws(TokenError) -> Payload {
        guard let algorithm = Self.algorithm(of: token) else { throw .malformed }
        guard algorithm == "HS256" else { throw .unsupportedAlgorithm(algorithm) }
        do {
            return try await keys.verify(token, as: Payload.self)
        } catch let error as JWTError where error.errorType == .signatureVerificationFailed {
            throw .badSignature
        } catch {
            throw .malformed
        }
    }

    /// The algorithm a token's header names. The key decides how a signature is checked; a header that names
    /// another algorithm than the key's (RFC 8725, 3.1) is refused as well, and says so.
    static func algorithm(of token: String) -> String? {
        guard let header = token.split(separator: ".", maxSplits: 1).first else { return nil }
        var base64 = header.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        return Data(base64Encoded: base64).flatMap { try? JSONDecoder().decode(JWTHeader.self, from: $0) }?.alg
    }
}
