import Foundation
import Gateway
import Hummingbird
import Identity
import Mustache
import ServiceKit
import WebBFF

/// The web shop a person uses in a browser, served by the BFF at `/`: the storefront (catalog, product, cart,
/// checkout, orders) and the back office, as HTML rendered on the server from Mustache templates, with one small
/// script (no build step) that follows an order's saga live.
///
/// It is another client of the web BFF's services, through the same gateway (rate limits, instances, breakers,
/// bulkheads): the same calls, the same idempotency keys (a form carries its own), the same rules. A person signs in
/// with a session cookie holding the same signed token the API takes as a bearer token; every form carries a CSRF
/// token that must match a cookie of its own; every page is sent with a Content-Security-Policy that allows no
/// inline script. Without JavaScript everything but the live progress works, and the order page refreshes instead.
public struct Storefront: Sendable {
    let services: Downstreams
    let web: WebBFF
    let login: DevelopmentLogin
    let sessions: Sessions
    let pages: Pages

    public init(services: Downstreams, web: WebBFF, login: DevelopmentLogin, signer: TokenSigner) throws {
        self.services = services
        self.web = web
        self.login = login
        self.sessions = Sessions(signer: signer)
        self.pages = try Pages()
    }

    /// The pages under `/` and their assets under `/static/`.
    public func addRoutes(to router: Router<GatewayContext>) {
        Assets.addRoutes(to: router)
        let group = router.group().add(middleware: PagePolicy(sessions: sessions, pages: pages))
        addSignInRoutes(to: group)
        addShopRoutes(to: group)
        addBackOfficeRoutes(to: group)
    }

    /// A `303 See Other` to `location`: where a form's browser goes next (POST, redirect, GET).
    static func seeOther(_ location: String) -> Response {
        Response(status: .seeOther, headers: [.location: location])
    }

    /// A new idempotency key for a form: sending the form twice (a double click, a reload) is one command.
    static func newKey() -> String { UUID().uuidString.lowercased() }
}
