import Essentials
import Foundation
import Identity
import Hummingbird
import ServiceKit
import SharedKernel

/// Signing in without a password, for local use only: `POST …/login` with `{"customer":"kim"}` (or
/// `{"admin":"ops"}`) answers a signed token. Off unless the gateway is started with it on; off, the route
/// answers 404 as if it did not exist.
public struct DevelopmentLogin: Sendable {
    let signer: TokenSigner
    let enabled: Bool
    let lifetime: TimeInterval

    public init(signer: TokenSigner, enabled: Bool, lifetime: TimeInterval = 8 * 3600) {
        self.signer = signer
        self.enabled = enabled
        self.lifetime = lifetime
    }

    struct Credentials: Codable { let customer: String?, admin: String? }
    public struct Session: Codable, Sendable {
        public let token: String, subject: String, role: String, expiresAt: Date
        public init(_ claims: Claims, token: String) {
            self.token = token
            subject = claims.subject
            role = claims.role.rawValue
            expiresAt = claims.expiresAt
        }
    }

    public func login(_ request: Request) async throws -> Response {
        guard enabled else {
            throw Problem(.notFound, rule: "development-login-off", title: "Not found",
                          detail: "the development login is switched off (shop-server bff --dev-login turns it on)")
        }
        let body = try JSONBody.decode(Credentials.self, from: try await JSONBody.bytes(of: request))
        guard let subject = body.customer ?? body.admin, (body.customer == nil) != (body.admin == nil) else {
            throw Problem.badRequest("malformed-login", "give exactly one of \"customer\" and \"admin\"")
        }
        return try Wire.json(try await session(subject, role: body.admin == nil ? .customer : .admin))
    }

    /// A signed session for `subject` in `role` (the JSON route's and the web shop's sign-in): 404 when the
    /// development login is off, 422 for a name that is empty, too long or spans lines.
    public func session(_ subject: String, role: Claims.Role) async throws -> Session {
        guard enabled else {
            throw Problem(.notFound, rule: "development-login-off", title: "Not found",
                          detail: "the development login is switched off (shop-server bff --dev-login turns it on)")
        }
        guard (1...64).contains(subject.unicodeScalars.count), !subject.trimmingWhitespace.isEmpty else {
            throw Problem(.unprocessableContent, rule: "invalid-subject", title: "Invalid name", detail: "a name is 1 to 64 characters on one line, not only spaces")
        }
        let now = Date()
        let claims = Claims(subject: subject, role: role, issuedAt: now, expiresAt: now.addingTimeInterval(lifetime))
        return Session(claims, token: try await signer.issue(claims))
    }

    /// Whether anybody may sign in without a password.
    public var isEnabled: Bool { enabled }

    /// `POST /login` on the routes, documented.
    public func addRoute(to routes: DocumentedRoutes) {
        routes.on(.post, "/login", Endpoint(
            "login", "Development sign-in: a token for a customer or an admin, without a password. Only when the gateway runs with --dev-login.",
            access: .anyone,
            body: (Self.credentialsSchema, ["customer": "kim"]),
            answers: [200: .init("A signed bearer token.", Schema.ref("Session"))],
            errors: [404: "The development login is switched off.", 422: "The name is empty, too long or spans lines."])
        ) { request, _ in try await login(request) }
    }

    /// Exactly one of `customer` and `admin`, a name of 1 to 64 characters with more than white space; the other
    /// absent or `null`.
    static let credentialsSchema: JSON = {
        let name = Schema.words(maximum: 64), absent = Schema.nullable(name)
        return [
            "type": "object", "properties": ["customer": absent, "admin": absent],
            "oneOf": [["type": "object", "required": ["customer"], "properties": ["customer": name]],
                      ["type": "object", "required": ["admin"], "properties": ["admin": name]]],
        ]
    }()

    public static let sessionSchema = Schema.object(
        ["token": Schema.string, "subject": Schema.string, "role": Schema.string(["customer", "admin"]), "expiresAt": Schema.dateTime])
}
