import Foundation
import Gateway
import HTTPTypes
import Hummingbird
import Identity
import Logging
import Mustache
import ServiceKit

/// The templates (Sources/Storefront/Templates, built into the binary), and a page rendered from one of them.
struct Pages: Sendable {
    let library: MustacheLibrary

    init() throws {
        var library = MustacheLibrary()
        for (name, bytes) in Self.templates { try library.register(String(decoding: bytes, as: UTF8.self), named: name) }
        self.library = library
    }

    static let templates: [(String, [UInt8])] = [
        ("layout", PackageResources.layout_mustache), ("problem", PackageResources.problem_mustache),
        ("sign-in", PackageResources.sign_in_mustache), ("catalog", PackageResources.catalog_mustache),
        ("product", PackageResources.product_mustache), ("add-to-cart", PackageResources.add_to_cart_mustache),
        ("cart", PackageResources.cart_mustache), ("orders", PackageResources.orders_mustache),
        ("order", PackageResources.order_mustache), ("admin-orders", PackageResources.admin_orders_mustache),
        ("admin-order", PackageResources.admin_order_mustache), ("admin-products", PackageResources.admin_products_mustache),
        ("admin-views", PackageResources.admin_views_mustache), ("admin-nav", PackageResources.admin_nav_mustache),
    ]

    /// What every template sees: the page's title, who is signed in, the CSRF value of its forms, and its content.
    struct Context<Content> {
        let title: String
        let viewer: Viewer?
        let csrf: String
        /// The page refreshes itself every two seconds when scripts are off (an order whose saga still runs).
        let refresh: Bool
        let content: Content
    }

    struct Viewer {
        let name: String, admin: Bool
        init(_ claims: Claims) {
            name = claims.subject
            admin = claims.role == .admin
        }
    }

    /// The page as HTML, with `status` (a form sent back with its problem has the problem's), and the CSRF cookie
    /// when the browser had none.
    func render(_ template: String, title: String, _ content: some Any, _ visit: Visit, status: HTTPResponse.Status = .ok,
                refresh: Bool = false) -> Response {
        let context = Context(title: title, viewer: visit.claims.map(Viewer.init), csrf: visit.csrf, refresh: refresh, content: content)
        let html = library.render(context, withTemplate: template) ?? "template \(template) is missing"
        var response = Response(status: status, headers: [.contentType: "text/html; charset=utf-8"],
                                body: .init(byteBuffer: ByteBuffer(string: html)))
        if visit.newCSRF { response.setCookie(Sessions.csrfCookie(visit.csrf, secure: visit.secure)) }
        return response
    }

    /// A problem as a page.
    struct ProblemPage { let status: Int, title: String, detail: String? }
}

/// A problem told next to the form field it is about (or the form's, with no field), and the page's status with it.
struct FieldProblem: Error, Sendable {
    let field: String, message: String, status: HTTPResponse.Status

    /// What a command's failure says, when it is the client's (4xx): the service's problem, or the gateway's.
    /// `nil` for anything else (a 5xx), which is left to ``PagePolicy``.
    init?(_ error: any Error, field: String) {
        guard let problem = Self.problem(error), (400..<500).contains(problem.status) else { return nil }
        self.field = field
        self.message = problem.detail ?? problem.title
        self.status = .init(code: problem.status)
    }

    init(field: String, _ message: String, status: HTTPResponse.Status = .unprocessableContent) {
        self.field = field
        self.message = message
        self.status = status
    }

    /// An error as the problem document it is answered with: a service's, passed on, or the BFF's own.
    static func problem(_ error: any Error) -> Pages.ProblemPage? {
        if let passed = error as? PassedOn {
            struct Document: Decodable { let status: Int?, title: String?, detail: String? }
            let document = try? JSONDecoder().decode(Document.self, from: passed.body)
            return .init(status: Int(passed.status.code), title: document?.title ?? passed.status.reasonPhrase, detail: document?.detail)
        }
        let problem = ProblemMiddleware<GatewayContext>.problem(for: error)
        return .init(status: Int(problem.status.code), title: problem.title, detail: problem.detail)
    }

    /// The message if it is about `field`.
    func message(for field: String) -> String? { self.field == field ? message : nil }
}

/// Around every page: the session from its cookie, the security headers, and any failure shown as a page (a request
/// that needs a session and has none goes to the sign-in page, and comes back after it).
struct PagePolicy: RouterMiddleware {
    typealias Context = GatewayContext
    let sessions: Sessions
    let pages: Pages

    static let contentSecurityPolicy = [
        "default-src 'self'", "script-src 'self'", "style-src 'self'", "img-src 'self' data:", "connect-src 'self'",
        "form-action 'self'", "frame-ancestors 'none'", "base-uri 'none'", "object-src 'none'",
    ].joined(separator: "; ")

    func handle(_ request: Request, context: GatewayContext, next: (Request, GatewayContext) async throws -> Response) async throws -> Response {
        var context = context
        // Pages know the session cookie only: a bearer token is the API's.
        context.claims = await sessions.claims(of: request)
        var response: Response
        do {
            response = try await next(request, context)
        } catch {
            response = failure(error, request, context)
        }
        response.headers[.contentSecurityPolicy] = Self.contentSecurityPolicy
        response.headers[.xContentTypeOptions] = "nosniff"
        response.headers[.referrerPolicy] = "same-origin"
        if response.headers[.cacheControl] == nil { response.headers[.cacheControl] = "no-store" }
        // A session cookie the shop no longer accepts (expired, or signed with another secret) is removed.
        if context.claims == nil, request.cookies[Sessions.sessionCookie] != nil, response.headers[.setCookie] == nil {
            response.setCookie(Sessions.endedSession(secure: Sessions.isSecure(request)))
        }
        return response
    }

    func failure(_ error: any Error, _ request: Request, _ context: GatewayContext) -> Response {
        let problem = FieldProblem.problem(error) ?? .init(status: 500, title: "Internal error", detail: nil)
        if problem.status == 401 {
            let back = request.method == .get ? request.uri.description : "/"
            return Storefront.seeOther("/login?next=\(Self.queryValue(back))")
        }
        if problem.status >= 500 {
            context.logger.error("page failed", metadata: ["error": "\(error)", "path": "\(request.uri.path)"])
        }
        var response = pages.render("problem", title: problem.title, problem, sessions.visit(request, context),
                                    status: .init(code: problem.status))
        if problem.status == 503 { response.headers[.retryAfter] = "2" }
        return response
    }

    static func queryValue(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(.init(charactersIn: "-._~/"))) ?? "/"
    }
}

extension HTTPField.Name {
    static let contentSecurityPolicy = HTTPField.Name("Content-Security-Policy")!
    static let xContentTypeOptions = HTTPField.Name("X-Content-Type-Options")!
    static let referrerPolicy = HTTPField.Name("Referrer-Policy")!
}

/// The stylesheet and the script, built into the binary, cached by browsers for an hour (and revalidated by ETag).
enum Assets {
    static let files: [(path: String, type: String, bytes: [UInt8])] = [
        ("/static/shop.css", "text/css; charset=utf-8", PackageResources.shop_css),
        ("/static/shop.js", "text/javascript; charset=utf-8", PackageResources.shop_js),
    ]

    static func addRoutes(to router: Router<GatewayContext>) {
        for file in files {
            let etag = "\"\(Wire.digest(Data(file.bytes)))\""
            let body = ByteBuffer(bytes: file.bytes)
            router.get(RouterPath(file.path)) { request, _ -> Response in
                if request.headers[.ifNoneMatch] == etag { return Response(status: .notModified, headers: [.eTag: etag]) }
                return Response(status: .ok, headers: [.contentType: file.type, .eTag: etag, .cacheControl: "public, max-age=3600",
                                                       .xContentTypeOptions: "nosniff"],
                                body: .init(byteBuffer: body))
            }
        }
    }
}
