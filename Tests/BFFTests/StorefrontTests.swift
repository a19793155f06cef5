import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import ShopSupport
import Synchronization
@testable import Storefront
import TestSupport
import Testing

/// A browser as far as the pages care: it keeps the cookies it is given and sends them back, and reads the CSRF value
/// and idempotency keys out of the forms of the last page.
final class PageClient: Sendable {
    let client: any TestClientProtocol
    private let state = Mutex<(cookies: [String: String], lastPage: String)>(([:], ""))
    var cookies: [String: String] { state.withLock { $0.cookies } }
    var lastPage: String { state.withLock { $0.lastPage } }

    init(_ client: any TestClientProtocol) { self.client = client }

    @discardableResult
    func get(_ path: String, headers extra: HTTPFields = [:]) async throws -> TestResponse {
        try await send(.get, path, nil, headers: extra)
    }

    /// A form as a browser sends it; `csrf` and `key` are the last page's unless given.
    @discardableResult
    func post(_ path: String, _ fields: [(String, String)], csrf: String? = nil, key: String? = nil, headers extra: HTTPFields = [:]) async throws -> TestResponse {
        var fields = fields
        if !fields.contains(where: { $0.0 == "csrf" }) { fields.append(("csrf", csrf ?? field("csrf") ?? "")) }
        if !fields.contains(where: { $0.0 == "key" }) { fields.append(("key", key ?? field("key") ?? UUID().uuidString)) }
        let body = fields.map { "\(Self.encode($0.0))=\(Self.encode($0.1))" }.joined(separator: "&")
        var headers = extra
        if headers[.contentType] == nil { headers[.contentType] = "application/x-www-form-urlencoded" }
        return try await send(.post, path, body, headers: headers)
    }

    func send(_ method: HTTPRequest.Method, _ path: String, _ body: String?, headers extra: HTTPFields) async throws -> TestResponse {
        var headers = extra
        let cookies = self.cookies
        if !cookies.isEmpty { headers[.cookie] = cookies.map { "\($0.key)=\($0.value)" }.joined(separator: "; ") }
        let response = try await client.execute(uri: path, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) })
        state.withLock { state in
            for cookie in response.headers[values: .setCookie] {
                let pair = cookie.split(separator: ";")[0].split(separator: "=", maxSplits: 1)
                let value = pair.count > 1 ? String(pair[1]) : ""
                state.cookies[String(pair[0])] = value.isEmpty ? nil : value
            }
            state.lastPage = String(buffer: response.body)
        }
        return response
    }

    /// The value of the last page's first hidden field `name` (in the form whose action is `action`).
    func field(_ name: String, inForm action: String? = nil) -> String? {
        var page = lastPage[...]
        if let action {
            guard let form = page.range(of: #"action="\#(action)""#) else { return nil }
            page = page[form.upperBound...]
        }
        guard let range = page.range(of: #"name="\#(name)" value=""#) else { return nil }
        return String(page[range.upperBound...].prefix { $0 != "\"" })
    }

    static func encode(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? text
    }

    func signIn(_ name: String, admin: Bool = false) async throws {
        try await get("/login")
        let answer = try await post("/login", [("name", name), ("role", admin ? "admin" : "customer"), ("next", "/")])
        #expect(answer.status == .seeOther)
    }
}

extension TestResponse {
    var text: String { String(buffer: body) }
    func cookie(_ name: String) -> String? { headers[values: .setCookie].first { $0.hasPrefix("\(name)=") } }
}

@Suite("The web shop's pages: sessions, CSRF, forms and their problems")
struct StorefrontTests {
    @Test func pagesAreHTMLWithAPolicyThatAllowsNoInlineScriptAndACSRFCookie() async throws {
        try await withBFF { shop, bff in
            try await shop.product("MUG-001", stock: 5)
            let browser = PageClient(bff)
            let page = try await browser.get("/")
            #expect(page.status == .ok && page.headers[.contentType] == "text/html; charset=utf-8")
            let policy = try #require(page.headers[HTTPField.Name("Content-Security-Policy")!])
            #expect(policy.contains("script-src 'self'") && !policy.contains("unsafe-inline") && policy.contains("frame-ancestors 'none'"))
            #expect(page.headers[.cacheControl] == "no-store")
            let csrf = try #require(page.cookie("shop_csrf"))
            #expect(csrf.contains("HttpOnly") && csrf.contains("SameSite=Strict"))
            #expect(page.text.contains("MUG-001 name") && !page.text.contains("<script>"))
            // The same value on the next page: it is set once.
            #expect(try await browser.get("/").cookie("shop_csrf") == nil)
            let script = try await browser.get("/static/shop.js")
            #expect(script.status == .ok && script.headers[.contentType]?.hasPrefix("text/javascript") == true)
            let etag = try #require(script.headers[.eTag])
            #expect(try await browser.get("/static/shop.js", headers: [.ifNoneMatch: etag]).status == .notModified)
        }
    }

    @Test func aFormWithoutThePagesCSRFValueOrFromAnotherSiteIsRefused() async throws {
        try await withBFF { _, bff in
            let browser = PageClient(bff)
            try await browser.get("/login")
            let forged = try await browser.post("/login", [("name", "kim")], csrf: String(repeating: "0", count: 64))
            #expect(forged.status == .forbidden && forged.text.contains("This form has expired"))
            let noCookie = PageClient(bff)
            #expect(try await noCookie.post("/login", [("name", "kim")], csrf: "whatever").status == .forbidden)
            let elsewhere = try await browser.post("/login", [("name", "kim")], headers: [.origin: "http://evil.example"])
            #expect(elsewhere.status == .forbidden && elsewhere.cookie("shop_session") == nil)
            let notAForm = try await browser.post("/login", [("name", "kim")], headers: [.contentType: "application/json"])
            #expect(notAForm.status == .unsupportedMediaType)
            let control = try await browser.post("/login", [("name", "ki\u{0}m")])
            #expect(control.status == .badRequest)
            #expect(browser.cookies["shop_session"] == nil)
        }
    }

    @Test func theSessionCookieIsThePagesAndNeverTheAPIs() async throws {
        try await withBFF { _, bff in
            let browser = PageClient(bff)
            let signedOut = try await browser.get("/cart")
            #expect(signedOut.status == .seeOther && signedOut.headers[.location] == "/login?next=/cart")
            // A bearer token does not sign a page in.
            #expect(try await bff.call(.get, "/cart", token: await token("kim")).status == .seeOther)

            try await browser.get("/login")
            let signIn = try await browser.post("/login", [("name", "kim"), ("next", "/cart")])
            #expect(signIn.status == .seeOther && signIn.headers[.location] == "/cart")
            let session = try #require(signIn.cookie("shop_session"))
            #expect(session.contains("HttpOnly") && session.contains("SameSite=Lax") && !session.contains("Secure"))
            #expect(try await browser.get("/cart").status == .ok)
            // The API takes no cookie: a page's session cannot act through it.
            let api = try await bff.execute(uri: "/web/v1/cart", method: .get, headers: [.cookie: "shop_session=\(browser.cookies["shop_session"]!)"])
            #expect(api.status == .unauthorized)
            // Behind a proxy that says HTTPS, the cookie is Secure; a next page elsewhere is not followed.
            try await browser.get("/login")
            let secure = try await browser.post("/login", [("name", "kim"), ("next", "//evil.example/")], headers: [HTTPField.Name("X-Forwarded-Proto")!: "https"])
            #expect(secure.cookie("shop_session")?.contains("Secure") == true && secure.headers[.location] == "/")
            // A customer is not an admin; signing out ends the session.
            #expect(try await browser.get("/admin/orders").status == .forbidden)
            try await browser.get("/")
            let out = try await browser.post("/logout", [])
            #expect(out.status == .seeOther && browser.cookies["shop_session"] == nil)
            #expect(try await browser.get("/orders").status == .seeOther)
        }
    }

    @Test func aRefusedFormComesBackWithItsProblemNextToTheFieldAndNothingLost() async throws {
        try await withBFF { shop, bff in
            try await shop.product("MUG-001", stock: 5)
            let browser = PageClient(bff)
            try await browser.signIn("kim")
            try await browser.get("/products/MUG-001")
            let letters = try await browser.post("/cart/items", [("sku", "MUG-001"), ("quantity", "two")])
            #expect(letters.status == .unprocessableContent && letters.text.contains("whole number") && letters.text.contains(#"value="two""#))
            try await browser.get("/products/MUG-001")
            let tooMany = try await browser.post("/cart/items", [("sku", "MUG-001"), ("quantity", "120")])
            #expect(tooMany.status == .unprocessableContent && tooMany.text.contains(#"value="120""#) && tooMany.text.contains("aria-invalid"))

            try await within(.seconds(20), "Ordering's copy of the catalog") {
                while true {
                    try await browser.get("/products/MUG-001")
                    if try await browser.post("/cart/items", [("sku", "MUG-001"), ("quantity", "2")]).status == .seeOther { return }
                    try await Task.sleep(for: .milliseconds(20))
                }
            }
            let cart = try await browser.get("/cart")
            #expect(cart.text.contains("25.00 EUR"))
            let card = try await browser.post("/checkout", [("card", "1234")])
            #expect(card.status == .unprocessableContent && card.text.contains(#"id="card-error""#) && card.text.contains(#"value="1234""#))
            #expect(card.text.contains("25.00 EUR"), "the cart is as it was")

            // The same form sent twice at once (a double click) is one order, and both answers lead to it.
            try await browser.get("/cart")
            let key = try #require(browser.field("key", inForm: "/checkout"))
            let csrf = browser.field("csrf")
            async let sentFirst = browser.post("/checkout", [("card", Shop.approve)], csrf: csrf, key: key)
            async let sentSecond = browser.post("/checkout", [("card", Shop.approve)], csrf: csrf, key: key)
            let (first, second) = try await (sentFirst, sentSecond)
            #expect(first.status == .seeOther && second.headers[.location] == first.headers[.location], "\(second.status) \(second.text.prefix(3000))")
            let orders = try await browser.get("/orders")
            #expect(orders.text.components(separatedBy: "<tbody>")[1].components(separatedBy: "<tr>").count == 2, "one order")
            // Another customer's order is not found.
            let ann = PageClient(bff)
            try await ann.signIn("ann")
            #expect(try await ann.get(try #require(first.headers[.location])).status == .notFound)
        }
    }

    @Test func theBackOfficeRebuildsAViewAndRefusesAnUnknownOne() async throws {
        try await withBFF { shop, bff in
            try await shop.product("MUG-001", stock: 5)
            let ops = PageClient(bff)
            try await ops.signIn("ops", admin: true)
            let views = try await ops.get("/admin/views")
            #expect(views.status == .ok && views.text.contains("catalog-product-listing") && views.text.contains("billing-payment-ledger"))
            let rebuilt = try await ops.post("/admin/views/catalog/catalog-product-listing/rebuild", [])
            #expect(rebuilt.status == .seeOther)
            let after = try await ops.get(try #require(rebuilt.headers[.location]))
            #expect(after.text.contains("catalog-product-listing is being rebuilt"))
            // Answered at once; the rebuild goes on in the service, and its second generation serves when it is done.
            try await within(.seconds(30), "the rebuilt view") {
                while true {
                    let page = try await ops.get("/admin/views").text
                    if let row = page.range(of: #"data-view="catalog-product-listing""#).map({ page[$0.upperBound...].prefix(600) }),
                       row.contains(#"class="generation">2<"#), row.contains("swapped in") { return }
                    try await Task.sleep(for: .milliseconds(50))
                }
            }
            try await ops.get("/admin/views")
            #expect(try await ops.post("/admin/views/catalog/no-such-view/rebuild", []).status == .notFound)
            try await ops.get("/admin/products")
            let price = try await ops.post("/admin/products/MUG-001/price", [("price", "12.5.0"), ("currency", "EUR")])
            #expect(price.status == .unprocessableContent && price.text.contains(#"value="12.5.0""#) && price.text.contains("12.50"))
        }
    }
}

@Suite("The web shop's form parsing")
struct FormTests {
    @Test func aFormIsDecodedAsBrowsersEncodeIt() throws {
        let form = try Form(encoded: "name=Zo%C3%AB+Smith&quantity=2&empty=&flag")
        #expect(form["name"] == "Zoë Smith" && form["quantity"] == "2" && form["empty"] == "" && form["flag"] == "")
        #expect(throws: (any Error).self) { try Form(encoded: "name=%E0%A4") }
        #expect(throws: (any Error).self) { try Form(encoded: "name=a%0Ab") }
    }

    @Test func aPriceIsReadAsPeopleWriteIt() throws {
        #expect(try Storefront.money("12.50", "EUR", field: "p").minorUnits == 1250)
        #expect(try Storefront.money("12,5", "EUR", field: "p").minorUnits == 1250)
        #expect(try Storefront.money("7", "GBP", field: "p").minorUnits == 700)
        for refused in ["", "twelve", "-1", "+1", "1.234", "1.", ".5", "1e3", "12.5.0", "9999999999"] {
            #expect(throws: FieldProblem.self, "\(refused)") { try Storefront.money(refused, "EUR", field: "p") }
        }
        #expect(throws: FieldProblem.self) { try Storefront.money("1", "XXX", field: "p") }
    }

    @Test func aPageToGoBackToIsOneOfTheShops() {
        #expect(Storefront.localPath("/orders/o-1?x=1") == "/orders/o-1?x=1")
        for elsewhere in [nil, "", "https://evil.example/", "//evil.example", "/\\evil.example", "orders"] {
            #expect(Storefront.localPath(elsewhere) == "/")
        }
    }
}
