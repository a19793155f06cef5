import Crypto
import Foundation
import Gateway
import HTTPTypes
import Hummingbird
import Identity
import ServiceKit

/// Who a browser is, and the proof that a form came from one of the shop's own pages.
///
/// - The session is the cookie `shop_session`: the signed token of the development login (HttpOnly, SameSite=Lax,
///   Secure when the request came over HTTPS, and as long-lived as the token). Pages never take a bearer token, and
///   the API never takes the cookie: a cookie sent by the browser on its own cannot act through the API.
/// - CSRF: the cookie `shop_csrf` holds a random value (HttpOnly, SameSite=Strict) that every form repeats in a
///   hidden field; a form whose field does not match, or whose `Origin` is another site, is refused (403). A page
///   sets the cookie when the browser has none.
struct Sessions: Sendable {
    static let sessionCookie = "shop_session", csrfCookie = "shop_csrf"
    let signer: TokenSigner

    /// The session's claims, if its cookie holds a valid token.
    func claims(of request: Request) async -> Claims? {
        guard let token = request.cookies[Self.sessionCookie]?.value, !token.isEmpty else { return nil }
        return try? await signer.verify(token)
    }

    /// What a page needs to know of its visitor: who (from the context), and the CSRF value its forms carry.
    func visit(_ request: Request, _ context: GatewayContext) -> Visit {
        if let csrf = request.cookies[Self.csrfCookie]?.value, Self.isToken(csrf) {
            return Visit(claims: context.claims, csrf: csrf, newCSRF: false, secure: Self.isSecure(request))
        }
        return Visit(claims: context.claims, csrf: Self.randomToken(), newCSRF: true, secure: Self.isSecure(request))
    }

    /// A form sent by one of the shop's pages: its fields, once its CSRF value and origin are checked.
    func form(_ request: Request, _ context: GatewayContext) async throws -> (Form, Visit) {
        if let origin = request.headers[.origin], origin != "null" {
            // The origin is scheme://authority: the page's own authority, whatever proxy put the scheme in front.
            let authority = origin.split(separator: "://", maxSplits: 1).last.map(String.init)
            guard let authority, authority.lowercased() == (request.head.authority ?? "").lowercased() else {
                throw Problem(.forbidden, rule: "cross-site-form", title: "Refused",
                              detail: "this form was sent from another site")
            }
        }
        let form = try await Form.read(request)
        let visit = visit(request, context)
        guard !visit.newCSRF, let sent = form["csrf"], Self.equal(sent, visit.csrf) else {
            throw Problem(.forbidden, rule: "stale-form", title: "This form has expired",
                          detail: "the page this form came from is too old or not from this shop: go back, reload the page and send it again")
        }
        return (form, visit)
    }

    /// `Set-Cookie` for a new session.
    static func sessionCookie(_ session: DevelopmentLogin.Session, secure: Bool) -> Cookie {
        Cookie(name: sessionCookie, value: session.token, maxAge: max(0, Int(session.expiresAt.timeIntervalSinceNow)), path: "/",
               secure: secure, httpOnly: true, sameSite: .lax)
    }

    /// `Set-Cookie` that ends the session.
    static func endedSession(secure: Bool) -> Cookie {
        Cookie(name: sessionCookie, value: "", maxAge: 0, path: "/", secure: secure, httpOnly: true, sameSite: .lax)
    }

    static func csrfCookie(_ value: String, secure: Bool) -> Cookie {
        Cookie(name: csrfCookie, value: value, path: "/", secure: secure, httpOnly: true, sameSite: .strict)
    }

    /// Whether the browser reached the shop over HTTPS (directly, or through a proxy that says so).
    static func isSecure(_ request: Request) -> Bool {
        request.headers[.forwardedProto]?.lowercased() == "https"
    }

    static func randomToken() -> String {
        SymmetricKey(size: .bits256).withUnsafeBytes { Data($0) }.map { String(format: "%02x", $0) }.joined()
    }

    static func isToken(_ text: String) -> Bool { text.utf8.count == 64 && text.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) } }

    /// Compares in time independent of where they differ.
    static func equal(_ a: String, _ b: String) -> Bool {
        let a = Array(a.utf8), b = Array(b.utf8)
        guard a.count == b.count else { return false }
        return zip(a, b).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }
}

extension HTTPField.Name {
    static let forwardedProto = HTTPField.Name("X-Forwarded-Proto")!
}

/// A page's visitor.
struct Visit: Sendable {
    let claims: Claims?
    /// The CSRF value this page's forms carry.
    let csrf: String
    /// The browser had no CSRF cookie: the page sets one.
    let newCSRF: Bool
    let secure: Bool
}

/// A form's fields (`application/x-www-form-urlencoded`, at most 16 KiB). A field with a control character, and a
/// body that is not a form, are refused as the API refuses them (400, 413, 415).
struct Form: Sendable {
    static let limit = 16 * 1024
    let fields: [String: String]

    subscript(_ name: String) -> String? { fields[name] }

    /// A field's text, trimmed; empty when absent.
    func text(_ name: String) -> String { (fields[name] ?? "").trimmingCharacters(in: .whitespacesAndNewlines) }

    /// The form's idempotency key (every command's form has one).
    func key() throws -> String {
        guard let key = fields["key"], !key.isEmpty else {
            throw Problem.badRequest("missing-idempotency-key", "the form has no idempotency key: reload the page and send it again")
        }
        return key
    }

    static func read(_ request: Request) async throws -> Form {
        let type = request.headers[.contentType]?.split(separator: ";").first?.trimmingCharacters(in: .whitespaces).lowercased()
        guard type == "application/x-www-form-urlencoded" else {
            throw Problem(.unsupportedMediaType, rule: "unsupported-media-type", title: "Not a form",
                          detail: "a form is sent as application/x-www-form-urlencoded")
        }
        var request = request
        let body: ByteBuffer
        do { body = try await request.collectBody(upTo: limit) } catch { throw Problem.contentTooLarge(limit: limit) }
        return try Form(encoded: String(buffer: body))
    }

    init(encoded: String) throws {
        var fields: [String: String] = [:]
        for pair in encoded.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ part: Substring) throws -> String {
                guard let text = part.replacingOccurrences(of: "+", with: " ").removingPercentEncoding else {
                    throw Problem.badRequest("malformed-form", "a form field is not valid percent-encoded UTF-8")
                }
                return text
            }
            let name = try decode(parts[0]), value = try decode(parts.count > 1 ? parts[1] : "")
            guard !Text.hasControlCharacter(value) else { throw Text.controlCharacterProblem }
            fields[name] = value
        }
        self.fields = fields
    }
}
