import Foundation
import Identity
import Testing

@Suite("shop-admin tokens, as a process")
struct TokensCommandTests {
    @Test func issuesATokenTheGatewayVerifies() async throws {
        let secret = "a-local-development-secret-of-more-than-32-bytes"
        let issued = try await shopAdmin(["tokens", "issue", "--admin", "ops", "--expires-in", "120"], environment: ["SHOP_TOKEN_SECRET": secret])
        #expect(issued.status == 0, "\(issued.output)")
        let claims = try await TokenSigner(secret: Data(secret.utf8)).verify(issued.output.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(claims.subject == "ops" && claims.role == .admin)
        #expect(abs(claims.expiresAt.timeIntervalSinceNow - 120) < 30)

        let both = try await shopAdmin(["tokens", "issue", "--admin", "ops", "--customer", "kim"], environment: ["SHOP_TOKEN_SECRET": secret])
        #expect(both.status != 0 && both.output.contains("exactly one of"))
        let weak = try await shopAdmin(["tokens", "issue", "--customer", "kim"], environment: ["SHOP_TOKEN_SECRET": "short"])
        #expect(weak.status == 1 && weak.output.contains("needs at least 32"))
    }
}
