import Essentials
import EventSourcing
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import ShopSupport
import TestSupport
import Testing

/// Decoded documents: EventSourcing's JSON keeps booleans, integers and numbers apart (JSONSerialization does not).
extension JSON {
    init(_ buffer: ByteBuffer) throws { self = try JSONDecoder().decode(JSON.self, from: Data(buffer: buffer)) }
    var string: String? { stringValue }
    var members: [String: JSON] { if case .object(let members) = self { members } else { [:] } }
    var elements: [JSON] { if case .array(let elements) = self { elements } else { [] } }
    var text: String { String(decoding: (try? JSONEncoder().encode(self)) ?? Data(), as: UTF8.self) }
}

/// The JSON Schema the documents use (type, enum, properties, required, items, oneOf, $ref, minimum, maximum,
/// minLength, maxLength, pattern, date-time), checked: the mistakes found, at their paths.
func violations(of value: JSON, _ schema: JSON, in document: JSON, at path: String = "$") -> [String] {
    if let ref = schema["$ref"]?.string {
        guard ref.hasPrefix("#/components/schemas/"), let target = document["components"]?["schemas"]?[String(ref.dropFirst(21))] else {
            return ["\(path): unresolved $ref \(ref)"]
        }
        return violations(of: value, target, in: document, at: path)
    }
    if let choices = schema["oneOf"]?.elements {
        let matching = choices.filter { violations(of: value, $0, in: document, at: path).isEmpty }.count
        return matching == 1 ? [] : ["\(path): \(value.text) matches \(matching) of oneOf"]
    }
    var found: [String] = []
    switch (schema["type"]?.string, value) {
    case (nil, _), ("null", .null), ("boolean", .bool), ("integer", .integer), ("number", .integer), ("number", .double): break
    case ("string", .string(let text)):
        if schema["format"]?.string == "date-time", (try? Date(text, strategy: .iso8601)) == nil,
            ISO8601DateFormatter.withMilliseconds.date(from: text) == nil {
            found.append("\(path): '\(text)' is not a date-time")
        }
        // JSON Schema counts a string's length in code points.
        if case .integer(let minimum)? = schema["minLength"], text.unicodeScalars.count < minimum { found.append("\(path): '\(text)' is too short") }
        if case .integer(let maximum)? = schema["maxLength"], text.unicodeScalars.count > maximum { found.append("\(path): '\(text)' is too long") }
        if let pattern = schema["pattern"]?.string {
            if let expression = try? NSRegularExpression(pattern: pattern) {
                if expression.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) == nil {
                    found.append("\(path): '\(text)' does not match \(pattern)")
                }
            } else {
                found.append("\(path): \(pattern) is not a regular expression")
            }
        }
    case ("array", .array(let elements)):
        if let items = schema["items"] {
            for (index, element) in elements.enumerated() { found += violations(of: element, items, in: document, at: "\(path)[\(index)]") }
        }
    case ("object", .object(let members)):
        for required in schema["required"]?.elements.compactMap(\.string) ?? [] where members[required] == nil {
            found.append("\(path): missing \(required)")
        }
        for (name, property) in schema["properties"]?.members ?? [:] {
            if let member = members[name] { found += violations(of: member, property, in: document, at: "\(path).\(name)") }
        }
    case (let type?, _): found.append("\(path): \(value.text) is not of type \(type)")
    }
    if let allowed = schema["enum"]?.elements, !allowed.contains(value) { found.append("\(path): \(value.text) is not one of \(JSON.array(allowed).text)") }
    if case .integer(let number) = value {
        if case .integer(let minimum)? = schema["minimum"], number < minimum { found.append("\(path): \(number) < \(minimum)") }
        if case .integer(let maximum)? = schema["maximum"], number > maximum { found.append("\(path): \(number) > \(maximum)") }
    }
    return found
}

extension ISO8601DateFormatter {
    nonisolated(unsafe) static let withMilliseconds: ISO8601DateFormatter = {
        let format = ISO8601DateFormatter()
        format.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return format
    }()
}

/// Every `$ref` anywhere in the document.
func references(in value: JSON) -> [String] {
    switch value {
    case .object(let members): (members["$ref"]?.string.map { [$0] } ?? []) + members.values.flatMap(references(in:))
    case .array(let elements): elements.flatMap(references(in:))
    default: []
    }
}

@Suite("The BFFs' OpenAPI documents")
struct OpenAPITests {
    static let methods = ["get", "put", "post", "delete", "patch"]

    @Test(arguments: ["/cli/openapi.json", "/web/openapi.json"])
    func theDocumentIsWellFormedOpenAPI31(_ location: String) async throws {
        try await withBFF { _, bff in
            let response = try await bff.call(.get, location, token: nil)
            #expect(response.status == .ok && response.headers[.contentType] == "application/json")
            let document = try JSON(response.body)
            #expect(document["openapi"] == .string("3.1.0"))
            #expect(document["info"]?["title"]?.string?.isEmpty == false && document["info"]?["version"]?.string != nil)
            let schemas = try #require(document["components"]?["schemas"]?.members)
            for reference in Set(references(in: document)) {
                let name = reference.replacingOccurrences(of: "#/components/schemas/", with: "")
                #expect(reference.hasPrefix("#/components/schemas/") && schemas[name] != nil, "unresolved \(reference)")
            }
            var ids: [String] = []
            let paths = try #require(document["paths"]?.members)
            #expect(paths.count >= 8)
            for (path, item) in paths {
                let templated = Set(path.split(separator: "/").filter { $0.hasPrefix("{") }.map { String($0.dropFirst().dropLast()) })
                for (method, operation) in item.members {
                    #expect(Self.methods.contains(method), "\(method) \(path)")
                    ids.append(operation["operationId"]?.string ?? "")
                    #expect(operation["summary"]?.string?.isEmpty == false)
                    let declared = operation["parameters"]?.elements.filter { $0["in"] == .string("path") }.compactMap { $0["name"]?.string } ?? []
                    #expect(Set(declared) == templated, "\(method) \(path): path parameters \(declared) against \(templated)")
                    for parameter in operation["parameters"]?.elements ?? [] {
                        #expect(parameter["schema"] != nil && parameter["example"] != nil, "\(method) \(path): \(parameter)")
                        if let example = parameter["example"], let schema = parameter["schema"] {
                            let problems = violations(of: example, schema, in: document)
                            #expect(problems.isEmpty, "\(method) \(path): the example of \(parameter["name"]?.string ?? "?") breaks its schema: \(problems)")
                        }
                    }
                    let responses = try #require(operation["responses"]?.members, "\(method) \(path)")
                    #expect(responses.keys.contains { $0.hasPrefix("2") }, "\(method) \(path) documents no success")
                    for (status, answer) in responses {
                        #expect(Int(status).map { (200..<600).contains($0) } == true && answer["description"]?.string != nil)
                    }
                    if operation["security"] != nil { #expect(responses["401"] != nil) }
                    if let body = operation["requestBody"]?["content"]?["application/json"] {
                        let problems = violations(of: try #require(body["example"]), try #require(body["schema"]), in: document)
                        #expect(problems.isEmpty, "\(method) \(path): its example breaks its schema: \(problems)")
                    }
                }
            }
            #expect(Set(ids).count == ids.count && !ids.contains(""), "operation ids: \(ids.sorted())")
        }
    }

    /// Each documented operation, called with its documented examples (path, query and body), in an order that
    /// gives them something to act on: each is accepted (2xx, or for re-driving a saga that is not parked, the
    /// 422 it documents), and every answer has a documented status and matches its documented schema.
    @Test(.timeLimit(.minutes(3)))
    func aRequestBuiltFromEachDocumentedExampleIsAcceptedAndAnsweredAsDocumented() async throws {
        try await withBFF { shop, bff in
            try await shop.product("MUG-001", price: 1250, stock: 50)
            let kim = await token("kim"), ops = await token("ops", .admin)
            try await within(.seconds(20), "Ordering's copy of the catalog") {
                while try await bff.call(.post, "/cli/v1/cart/items", #"{"sku":"MUG-001","quantity":1}"#, token: kim).status != .ok {
                    try await Task.sleep(for: .milliseconds(20))
                }
            }
            var order = ""
            var called: [String] = []

            func run(_ location: String, _ sequence: [String]) async throws {
                let document = try JSON(try await bff.call(.get, location, token: nil).body)
                var operations: [String: (method: String, path: String, operation: JSON)] = [:]
                for (path, item) in document["paths"]?.members ?? [:] {
                    for (method, operation) in item.members { operations[operation["operationId"]?.string ?? ""] = (method, path, operation) }
                }
                #expect(Set(operations.keys) == Set(sequence), "\(location): the documented operations are the ones this test calls")
                for id in sequence {
                    let (method, template, operation) = try #require(operations[id], "\(location) has no \(id)")
                    // Something to act on.
                    if id == "checkout" {
                        try await bff.call(.post, "/cli/v1/cart/items", #"{"sku":"MUG-001","quantity":1}"#, token: kim)
                    }
                    if id == "shipOrder" {
                        let order = order
                        try await within(.seconds(20), "the order to be confirmed") {
                            while try await bff.call(.get, "/cli/v1/orders/\(order)?wait=1", token: kim).object["status"] as? String != "confirmed" {}
                        }
                    }
                    var path = template, query: [String] = []
                    for parameter in operation["parameters"]?.elements ?? [] {
                        guard let name = parameter["name"]?.string, let example = parameter["example"] else { continue }
                        let value = example.string ?? example.text
                        switch parameter["in"]?.string {
                        case "path": path = path.replacingOccurrences(of: "{\(name)}", with: name == "id" ? order : value)
                        case "query": query.append("\(name)=\(value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? value)")
                        default: break
                        }
                    }
                    let body = operation["requestBody"]?["content"]?["application/json"]?["example"]?.text
                    let token: String? = operation["security"] == nil ? nil : id.hasSuffix("Product") || id == "receiveStock" || id == "shipOrder"
                        || id.hasSuffix("Saga") || id.hasSuffix("Sagas") ? ops : kim
                    let uri = path + (query.isEmpty ? "" : "?" + query.joined(separator: "&"))
                    let response = try await bff.call(HTTPRequest.Method(rawValue: method.uppercased())!, uri, body, token: token)
                    called.append(id)
                    let status = Int(response.status.code)
                    let expected = id == "retrySaga" ? 422 : nil
                    #expect(expected.map { status == $0 } ?? (200..<300).contains(status),
                            "\(method) \(uri): \(status) \(String(buffer: response.body))")
                    let answer = try #require(operation["responses"]?["\(status)"], "\(method) \(uri): \(status) is not documented")
                    let contentType = response.headers[.contentType] ?? ""
                    let schema = try #require(answer["content"]?[contentType]?["schema"], "\(method) \(uri): \(contentType) is not documented for \(status)")
                    if contentType.hasSuffix("json") {
                        let problems = violations(of: try JSON(response.body), schema, in: document)
                        #expect(problems.isEmpty, "\(method) \(uri): the answer breaks its schema: \(problems)")
                    }
                    if id == "checkout", let placed = try JSON(response.body)["order"]?.string { order = placed }
                }
            }

            try await run("/cli/openapi.json", [
                "login", "whoami", "listProducts", "showProduct", "addToCart", "setCartQuantity", "showCart", "removeFromCart", "clearCart",
                "checkout", "listOrders", "showOrder", "cancelOrder",
            ])
            try await run("/web/openapi.json", [
                "login", "listProducts", "showProduct", "addToCart", "setCartQuantity", "showCart", "removeFromCart", "clearCart", "checkout",
                "listOrders",
                "showOrder", "followOrder", "shipOrder", "addProduct", "repriceProduct", "receiveStock", "listSagas", "retrySaga",
                "discontinueProduct",
            ])
            #expect(called.count == 32)
        }
    }

    /// Generated from the documents, hence from the route tables that build them: every route but the public ones
    /// refuses a request without a token (401), every admin route a customer's token and every customer route an
    /// admin's (403), before its handler runs. A route added with its access declared cannot forget to check it.
    @Test func theRouteTableEnforcesWhoMayCallEachRoute() async throws {
        try await withBFF { _, bff in
            let customer = await token("kim"), admin = await token("ops", .admin)
            var checked = 0
            for documentPath in ["/cli/openapi.json", "/web/openapi.json"] {
                let document = try JSONDecoder().decode(JSON.self, from: Data(buffer: try await bff.call(.get, documentPath, token: nil).body))
                for (path, item) in document["paths"]?.members ?? [:] {
                    for (name, operation) in item.members {
                        var uri = path
                        for parameter in operation["parameters"]?.elements ?? [] where parameter["in"]?.string == "path" {
                            uri = uri.replacingOccurrences(of: "{\(parameter["name"]?.string ?? "")}", with: parameter["example"]?.string ?? "x")
                        }
                        let body = operation["requestBody"]?["content"]?["application/json"]?["example"]?.text
                        let method = try #require(HTTPRequest.Method(name.uppercased()))
                        let refusals: [(token: String?, status: HTTPResponse.Status)]
                        switch operation["x-access"]?.string {
                        case "admin": refusals = [(nil, .unauthorized), (customer, .forbidden)]
                        case "customer": refusals = [(nil, .unauthorized), (admin, .forbidden)]
                        case "signed-in": refusals = [(nil, .unauthorized)]
                        case "anyone": refusals = []
                        default: Issue.record("\(name) \(path) declares no access"); refusals = []
                        }
                        for (token, status) in refusals {
                            let answer = try await bff.call(method, uri, body, token: token)
                            #expect(answer.status == status && answer.headers[.contentType] == "application/problem+json",
                                    "\(name) \(uri) with \(token == nil ? "no token" : token == admin ? "an admin's token" : "a customer's token")")
                            checked += 1
                        }
                    }
                }
            }
            #expect(checked >= 30, "only \(checked) refusals checked")
        }
    }

    @Test func theDevelopmentLoginIsOffUnlessSwitchedOn() async throws {
        try await withBFF(developmentLogin: false) { _, bff in
            let off = try await bff.call(.post, "/cli/v1/login", #"{"customer":"kim"}"#, token: nil)
            #expect(off.status == .notFound && off.rule == "development-login-off")
        }
        try await withBFF { _, bff in
            let session = try await bff.call(.post, "/cli/v1/login", #"{"customer":"kim"}"#, token: nil).object
            let issued = try #require(session["token"] as? String)
            let me = try await bff.call(.get, "/cli/v1/me", token: issued).object
            #expect(me["subject"] as? String == "kim" && me["role"] as? String == "customer")
            #expect(try await bff.call(.post, "/web/v1/login", #"{"admin":"ops"}"#, token: nil).object["role"] as? String == "admin")
            for bad in [#"{}"#, #"{"customer":"kim","admin":"ops"}"#, #"{"customer":""}"#, #"{"customer":"a\nb"}"#, "nope"] {
                let refused = try await bff.call(.post, "/cli/v1/login", bad, token: nil)
                #expect([400, 422].contains(refused.status.code) && refused.headers[.contentType] == "application/problem+json", "\(bad)")
            }
        }
    }
}
