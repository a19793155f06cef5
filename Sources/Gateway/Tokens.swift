import Crypto
import Foundation

/// Who a bearer token speaks for.
public struct Claims: Codable, Sendable, Equatable {
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
        issuedAt = Date(timeIntervalSince1970: try Self.seconds(container, .issuedAt))
        expiresAt = Date(timeIntervalSince1970: try Self.seconds(container, .expiresAt))
    }

    /// The latest time a token may name: 2^33 s after 1970 (the year 2242). A validly signed token is still input:
    /// `exp: 1e300` made a date that crashed the process when it was encoded again.
    static let latestSeconds: Double = 8_589_934_592

    /// A time claim, in whole or fractional seconds since 1970, no earlier than 1970 and no later than ``latestSeconds``.
    private static func seconds(_ container: KeyedDecodingContainer<CodingKeys>, _ key: CodingKeys) throws -> Double {
        let seconds = try container.decode(Double.self, forKey: key)
        guard seconds.isFinite, (0...latestSeconds).contains(seconds) else {
            throw DecodingError.dataCorruptedError(forKey: key, in: container, debugDescription: "\(key.rawValue) is not a time between 1970 and 2242")
        }
        return seconds
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(subject, forKey: .subject)
        try container.encode(role, forKey: .role)
        try container.encode(Int64(issuedAt.timeIntervalSince1970), forKey: .issuedAt)
        try container.encode(Int64(expiresAt.timeIntervalSince1970), forKey: .expiresAt)
    }
}

public enum TokenError: Error, Equatable, CustomStringConvertible {
    case malformed
    case unsupportedAlgorithm(String)
    case badSignature
    case expired(Date)

    public var description: String {
        switch self {
        case .malformed: "the bearer token is not a JWT"
        case .unsupportedAlgorithm(let name): "the bearer token is signed with \(name.prefix(20)); only HS256 is accepted"
        case .badSignature: "the bearer token's signature does not match"
        case .expired(let date): "the bearer token expired at \(date.formatted(.iso8601))"
        }
    }
}

/// Issues and verifies JWTs signed with HMAC-SHA256 (HS256) and one secret key. Verification checks the
/// header's algorithm (only HS256: never `none`), the signature in constant time, then the expiry.
public struct TokenSigner: Sendable {
    let key: SymmetricKey

    /// `secret` must be at least 32 bytes (the size of the hash).
    public init(secret: Data) throws {
        guard secret.count >= 32 else { throw TokenSignerError.weakSecret(secret.count) }
        key = SymmetricKey(data: secret)
    }

    public enum TokenSignerError: Error, Equatable, CustomStringConvertible {
        case weakSecret(Int)
        public var description: String {
            switch self { case .weakSecret(let count): "the token secret has \(count) bytes; it needs at least 32" }
        }
    }

    static let header = base64URL(Data(#"{"alg":"HS256","typ":"JWT"}"#.utf8))

    public func issue(_ claims: Claims) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return sign(payload: try encoder.encode(claims))
    }

    /// A token of `payload`, signed.
    func sign(payload: Data) -> String {
        let body = Self.header + "." + Self.base64URL(payload)
        let signature = HMAC<SHA256>.authenticationCode(for: Data(body.utf8), using: key)
        return body + "." + Self.base64URL(Data(signature))
    }

    public func verify(_ token: String, now: Date = Date()) throws(TokenError) -> Claims {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let headerData = Self.data(base64URL: parts[0]), let payload = Self.data(base64URL: parts[1]),
            let signature = Self.data(base64URL: parts[2]),
            let header = try? JSONSerialization.jsonObject(with: headerData) as? [String: Any]
        else { throw .malformed }
        guard let algorithm = header["alg"] as? String, algorithm == "HS256" else {
            throw .unsupportedAlgorithm(header["alg"] as? String ?? "nothing")
        }
        let signed = Data("\(parts[0]).\(parts[1])".utf8)
        guard HMAC<SHA256>.isValidAuthenticationCode(signature, authenticating: signed, using: key) else { throw .badSignature }
        guard let claims = try? JSONDecoder().decode(Claims.self, from: payload) else { throw .malformed }
        guard claims.expiresAt > now else { throw .expired(claims.expiresAt) }
        return claims
    }

    static func base64URL(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func data(base64URL text: Substring) -> Data? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        return Data(base64Encoded: base64)
    }
}
