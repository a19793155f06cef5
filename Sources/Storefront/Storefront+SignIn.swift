import Foundation
import Gateway
import Hummingbird
import Identity
import ServiceKit

extension Storefront {
    struct SignInPage { let name: String, admin: Bool, next: String, error: String?, available: Bool }

    func addSignInRoutes(to pages: RouterGroup<GatewayContext>) {
        let login = login, sessions = sessions, renderer = self.pages

        pages.get("/login") { request, context in
            let next = Self.localPath(try request.query("next"))
            let content = SignInPage(name: "", admin: false, next: next, error: nil, available: login.isEnabled)
            return renderer.render("sign-in", title: "Sign in", content, sessions.visit(request, context),
                                   status: login.isEnabled ? .ok : .notFound)
        }
        pages.post("/login") { request, context in
            let (form, visit) = try await sessions.form(request, context)
            let name = form.text("name"), admin = form["role"] == "admin", next = Self.localPath(form["next"])
            do {
                let session = try await login.session(name, role: admin ? .admin : .customer)
                var response = Self.seeOther(admin && next == "/" ? "/admin/orders" : next)
                response.setCookie(Sessions.sessionCookie(session, secure: visit.secure))
                return response
            } catch {
                guard let problem = FieldProblem(error, field: "name") else { throw error }
                let content = SignInPage(name: name, admin: admin, next: next, error: problem.message, available: login.isEnabled)
                return renderer.render("sign-in", title: "Sign in", content, visit, status: problem.status)
            }
        }
        pages.post("/logout") { request, context in
            let (_, visit) = try await sessions.form(request, context)
            var response = Self.seeOther("/")
            response.setCookie(Sessions.endedSession(secure: visit.secure))
            return response
        }
    }

    /// Where to go after signing in: a path of this site only (never `//elsewhere` or `https://elsewhere`).
    static func localPath(_ text: String?) -> String {
        guard let text, text.hasPrefix("/"), !text.hasPrefix("//"), !text.contains("\\"), text.count <= 2000 else { return "/" }
        return text
    }
}
