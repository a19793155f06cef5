import Crypto
import Foundation
import Identity
import Testing

/// A JWT signed here with HS256, byte by byte as RFC 7519 says, apart from the code under test: what another
/// standard issuer would send, and payloads no `Claims` value could encode.
func standardToken(_ payload: String, header: String = #"{"alg":"HS256","typ":"JWT"}"#, key: Data) -> String {
    func base64URL(_ data: Data) -> String {
        data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
    let body = base64URL(Data(header.utf8)) + "." + base64URL(Data(payload.utf8))
    return body + "." + base64URL(Data(HMAC<SHA256>.authenticationCode(for: Data(body.utf8), using: SymmetricKey(data: key))))
}

@Suite("Bearer tokens")
struct TokenTests {
    let key = Data(repeating: 7, count: 32)
    let now = Date(timeIntervalSince1970: 1_800_000_000)

    func claims(_ role: Claims.Role = .customer, expiresIn seconds: Double = 3600) -> Claims {
        Claims(subject: "kim", role: role, issuedAt: now, expiresAt: now.addingTimeInterval(seconds))
    }

    @Test func anIssuedTokenVerifiesToItsClaims() async throws {
        let signer = try await TokenSigner(secret: key)
        let token = try await signer.issue(claims(.admin))
        #expect(try await signer.verify(token, now: now) == claims(.admin))
        #expect(token.split(separator: ".").count == 3 && !token.contains("="))
        // A token from another standard issuer with the same key verifies too.
        let foreign = standardToken(#"{"sub":"kim","role":"admin","iat":1800000000,"exp":1800003600}"#, key: key)
        #expect(try await signer.verify(foreign, now: now) == claims(.admin))
    }

    @Test func anExpiredTokenIsRefused() async throws {
        let signer = try await TokenSigner(secret: key)
        let token = try await signer.issue(claims(expiresIn: 60))
        await #expect(throws: TokenError.expired(now.addingTimeInterval(60))) { try await signer.verify(token, now: now.addingTimeInterval(61)) }
    }

    @Test func anotherKeysSignatureOrATamperedPayloadIsRefused() async throws {
        let signer = try await TokenSigner(secret: key)
        let other = try await TokenSigner(secret: Data(repeating: 8, count: 32))
        let foreign = try await other.issue(claims())
        await #expect(throws: TokenError.badSignature) { try await signer.verify(foreign, now: now) }
        // The payload changed to an admin's, the signature kept.
        let parts = try await signer.issue(claims()).split(separator: ".")
        let admin = try await signer.issue(claims(.admin)).split(separator: ".")
        await #expect(throws: TokenError.badSignature) { try await signer.verify("\(parts[0]).\(admin[1]).\(parts[2])", now: now) }
    }

    @Test func unsignedOrMalformedTokensAreRefused() async throws {
        let signer = try await TokenSigner(secret: key)
        let parts = try await signer.issue(claims()).split(separator: ".")
        let none = Data(#"{"alg":"none","typ":"JWT"}"#.utf8).base64EncodedString().replacingOccurrences(of: "=", with: "")
        await #expect(throws: TokenError.unsupportedAlgorithm("none")) { try await signer.verify("\(none).\(parts[1]).", now: now) }
        // Signed with the key as a password for another algorithm: the key decides, HS256.
        let hs512 = standardToken(#"{"sub":"kim","role":"admin","iat":1800000000,"exp":1800003600}"#, header: #"{"alg":"HS512"}"#, key: key)
        await #expect(throws: TokenError.unsupportedAlgorithm("HS512")) { try await signer.verify(hs512, now: now) }
        for text in ["", "abc", "a.b", "a.b.c.d", "!!.??.##"] {
            await #expect(throws: TokenError.malformed, "\(text)") { try await signer.verify(text, now: now) }
        }
    }

    /// A token signed with the right key is still input: time claims beyond any date (or not numbers at all) are
    /// refused as malformed. `exp: 1e300` crashed the BFF.
    @Test func timeClaimsOutOfRangeAreRefused() async throws {
        let signer = try await TokenSigner(secret: key)
        for exp in ["1e300", "-1", "1e10", "\"soon\"", "null"] {
            let token = standardToken(#"{"exp":\#(exp),"iat":1800000000,"role":"customer","sub":"kim"}"#, key: key)
            await #expect(throws: TokenError.malformed, "exp \(exp)") { try await signer.verify(token, now: now) }
        }
        let fine = standardToken(#"{"exp":1800003600.5,"iat":1800000000,"role":"customer","sub":"kim"}"#, key: key)
        #expect(try await signer.verify(fine, now: now).subject == "kim")
    }

    @Test func aShortSecretIsRefused() async {
        await #expect(throws: TokenSigner.TokenSignerError.weakSecret(16)) { try await TokenSigner(secret: Data(repeating: 1, count: 16)) }
    }
}

@Suite("Service tokens")
struct ServiceTokenTests {
    let secret = Data(repeating: 9, count: 32)

    @Test func aServiceTokenNamesItsCallerForItsAudienceOnly() async throws {
        let bff = try await ServiceIdentity(name: "bff", secret: secret)
        let catalog = try await ServiceIdentity(name: "catalog", secret: secret)
        let header = try await bff.authorization(to: "catalog")
        #expect(try await catalog.caller(header, audience: "catalog") == "bff")
        // The same header again is the kept token; meant for Catalog, it is no good at Billing.
        #expect(try await bff.authorization(to: "catalog") == header)
        await #expect(throws: TokenError.wrongAudience("catalog")) { try await catalog.caller(header, audience: "billing") }
        // It expires.
        await #expect(throws: TokenError.self) { try await catalog.caller(header, audience: "catalog", now: Date() + ServiceIdentity.lifetime + 1) }
        // A caller renews its token before it expires.
        let later = try await bff.authorization(to: "catalog", now: Date() + ServiceIdentity.lifetime * 0.9)
        #expect(later != header)
        #expect(try await catalog.caller(later, audience: "catalog", now: Date() + ServiceIdentity.lifetime * 0.9 + 60) == "bff")
    }

    @Test func noTokenAnotherSecretOrACustomersTokenIsRefused() async throws {
        let catalog = try await ServiceIdentity(name: "catalog", secret: secret)
        await #expect(throws: TokenError.malformed) { try await catalog.caller(nil, audience: "catalog") }
        await #expect(throws: TokenError.malformed) { try await catalog.caller("Basic YWxhZGRpbjpvcGVuc2VzYW1l", audience: "catalog") }
        let stranger = try await ServiceIdentity(name: "bff", secret: Data(repeating: 1, count: 32))
        let forged = try await stranger.authorization(to: "catalog")
        await #expect(throws: TokenError.badSignature) { try await catalog.caller(forged, audience: "catalog") }
        // A customer's token, even one signed with the services' secret, has no audience: it is no service token.
        let customer = try await TokenSigner(secret: secret)
            .issue(Claims(subject: "kim", role: .admin, issuedAt: Date(), expiresAt: Date() + 60))
        await #expect(throws: TokenError.malformed) { try await catalog.caller("Bearer " + customer, audience: "catalog") }
        // Nor does a service token pass for a customer's.
        let asCustomer = try await TokenSigner(secret: secret)
        let serviceToken = String(try await ServiceIdentity(name: "bff", secret: secret).authorization(to: "catalog").dropFirst(7))
        await #expect(throws: TokenError.malformed) { try await asCustomer.verify(serviceToken) }
    }
}
