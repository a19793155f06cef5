import Essentials
import Foundation
import HTTPTypes
import Hummingbird
import ServiceKit

/// JSON Schema (2020-12, as OpenAPI 3.1 uses it) in short.
public enum Schema {
    public static let string: JSON = ["type": "string"]
    public static let integer: JSON = ["type": "integer"]
    public static let boolean: JSON = ["type": "boolean"]
    public static let dateTime: JSON = ["type": "string", "format": "date-time"]
    public static func string(_ values: [String]) -> JSON { ["type": "string", "enum": .array(values.map { .string($0) })] }
    public static func integer(minimum: Int64, maximum: Int64? = nil) -> JSON {
        var schema: [String: JSON] = ["type": "integer", "minimum": .integer(minimum)]
        if let maximum { schema["maximum"] = .integer(maximum) }
        return .object(schema)
    }
    public static func array(_ items: JSON) -> JSON { ["type": "array", "items": items] }
    /// Text the gateway takes: no control character (`SharedKernel.ControlCharacters`), at most `maximum` characters.
    public static func text(maximum: Int? = nil) -> JSON {
        var schema: [String: JSON] = ["type": "string", "pattern": .string("^[^\(controls)]*$")]
        if let maximum { schema["maxLength"] = .integer(Int64(maximum)) }
        return .object(schema)
    }
    /// Text with at least one character that is not white space, at most `maximum` characters.
    public static func words(maximum: Int) -> JSON {
        ["type": "string", "minLength": 1, "maxLength": .integer(Int64(maximum)), "pattern": .string("^[^\(controls)]*[^\(controls)\\s][^\(controls)]*$")]
    }
    /// The control characters, as a regular expression's class body (ECMA-262 and Python read it alike).
    static let controls = #"\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069"#

    /// `schema` as the gateway reads it from a request: every string without its own pattern, enumeration or format
    /// is ``text(maximum:)``, at any depth.
    static func inbound(_ schema: JSON) -> JSON {
        switch schema {
        case .object(var members):
            if case .string("string")? = members["type"], members["pattern"] == nil, members["enum"] == nil, members["format"] == nil {
                members["pattern"] = Schema.text()["pattern"]
            }
            for (key, value) in members where key != "enum" && key != "example" { members[key] = inbound(value) }
            return .object(members)
        case .array(let items):
            return .array(items.map(inbound))
        default:
            return schema
        }
    }
    public static func ref(_ name: String) -> JSON { ["$ref": .string("#/components/schemas/\(name)")] }
    /// The schema, or `null`.
    public static func nullable(_ schema: JSON) -> JSON { ["oneOf": [schema, ["type": "null"]]] }
    /// An object: `required` members, then `optional` ones (each may be absent).
    public static func object(_ required: [String: JSON], optional: [String: JSON] = [:]) -> JSON {
        [
            "type": "object",
            "properties": .object(required.merging(optional) { first, _ in first }),
            "required": .array(required.keys.sorted().map { .string($0) }),
        ]
    }
}

/// What one route is, as its OpenAPI operation says: who may call it, what it takes, what it answers.
public struct Endpoint: Sendable {
    public enum Access: String, Sendable {
        case anyone, signedIn = "signed-in", customer, admin

        /// Refuses a request this route does not take: 401 without a valid token, 403 with the wrong role.
        func check(_ context: GatewayContext) throws {
            switch self {
            case .anyone: break
            case .signedIn: if context.claims == nil { throw Problem.unauthorised("this route needs a bearer token: Authorization: Bearer <token>") }
            case .customer: _ = try context.customer()
            case .admin: _ = try context.admin()
            }
        }
    }
    public struct Parameter: Sendable {
        /// The path parameters both BFFs name the same way.
        public static let sku = Parameter("sku", "A product's stock-keeping unit.", example: "MUG-001")
        public static let orderID = Parameter("id", "An order's id (from checkout or the order list).", example: "o-5d1e0c9b6a3f4e2d8c7b1a09")

        let name: String, description: String, schema: JSON, example: JSON
        public init(_ name: String, _ description: String, _ schema: JSON = Schema.string, example: JSON) {
            self.name = name
            self.description = description
            self.schema = schema
            self.example = example
        }
    }
    public struct Answer: Sendable {
        let description: String, schema: JSON?, contentType: String
        public init(_ description: String, _ schema: JSON? = nil, contentType: String = "application/json") {
            self.description = description
            self.schema = schema
            self.contentType = contentType
        }
    }

    let id: String, summary: String, access: Access
    let path: [Parameter], query: [Parameter]
    let body: (schema: JSON, example: JSON)?
    /// A command: it needs an `Idempotency-Key`.
    let command: Bool
    let answers: [Int: Answer]
    /// The client errors the route answers besides those every route of its kind does (auth, limits, keys).
    let errors: [Int: String]

    public init(
        _ id: String, _ summary: String, access: Access, path: [Parameter] = [], query: [Parameter] = [],
        body: (schema: JSON, example: JSON)? = nil, command: Bool = false, answers: [Int: Answer], errors: [Int: String] = [:]
    ) {
        self.id = id
        self.summary = summary
        self.access = access
        self.path = path
        self.query = query
        self.body = body
        self.command = command
        self.answers = answers
        self.errors = errors
    }

    func document() -> JSON {
        var operation: [String: JSON] = ["operationId": .string(id), "summary": .string(summary), "x-access": .string(access.rawValue)]
        let parameters = path.map { Self.parameter($0, in: "path") } + query.map { Self.parameter($0, in: "query") }
            + (command ? [["name": "Idempotency-Key", "in": "header", "required": true, "schema": Self.idempotencyKey,
                           "description": "A unique string per intended action: a retry with the same key is the same action.",
                           "example": "3f0c1a6e-8d1b-4f59-9a55-0c2b7f1d9e21"]] : [])
        if !parameters.isEmpty { operation["parameters"] = .array(parameters) }
        if let body {
            operation["requestBody"] = ["required": true, "content": ["application/json": ["schema": Schema.inbound(body.schema), "example": body.example]]]
        }
        if access != .anyone { operation["security"] = [["bearer": []]] }
        var responses: [String: JSON] = [:]
        for (status, answer) in answers {
            var response: [String: JSON] = ["description": .string(answer.description)]
            if let schema = answer.schema { response["content"] = .object([answer.contentType: ["schema": schema]]) }
            responses["\(status)"] = .object(response)
        }
        var problems = errors
        if access != .anyone { problems[401] = "No valid bearer token (missing, malformed, expired or wrongly signed)." }
        if access == .customer || access == .admin {
            problems[403] = access == .admin ? "The token lacks the admin role." : "The route acts for a customer; the token is an admin's."
        }
        if command || body != nil, problems[400] == nil {
            problems[400] = "The request is malformed: a missing Idempotency-Key, or a body that is not the JSON described."
        }
        if !query.isEmpty || !path.isEmpty, problems[400] == nil { problems[400] = "A parameter is malformed." }
        if command, problems[422] == nil { problems[422] = "This Idempotency-Key was used for another request: use a new key for a new action." }
        if body != nil { problems[415] = "The body is not JSON." }
        problems[429] = "Too many requests from this client; see Retry-After."
        problems[503] = "A service behind the gateway is unavailable, failing or busy; see Retry-After."
        problems[502] = "A service behind the gateway answered something it should not have."
        for (status, description) in problems {
            responses["\(status)"] = ["description": .string(description), "content": ["application/problem+json": ["schema": Schema.ref("Problem")]]]
        }
        operation["responses"] = .object(responses)
        return .object(operation)
    }

    /// What the BFF takes as an Idempotency-Key: 1 to 100 printable ASCII characters.
    static let idempotencyKey: JSON = ["type": "string", "minLength": 1, "maxLength": 100, "pattern": "^[ -~]+$"]

    private static func parameter(_ parameter: Parameter, in location: String) -> JSON {
        [
            "name": .string(parameter.name), "in": .string(location), "required": .bool(location == "path"),
            "description": .string(parameter.description), "schema": Schema.inbound(parameter.schema), "example": parameter.example,
        ]
    }
}

/// Routes registered together with their documentation, so the OpenAPI document lists exactly the routes there
/// are, with what each takes and answers.
public final class DocumentedRoutes: @unchecked Sendable {  // built once, before the server starts
    let group: RouterGroup<GatewayContext>
    let prefix: String
    private(set) var operations: [(method: HTTPRequest.Method, path: String, endpoint: Endpoint)] = []

    public init(_ router: Router<GatewayContext>, prefix: String) {
        self.group = router.group(RouterPath(prefix))
        self.prefix = prefix
    }

    public func on(
        _ method: HTTPRequest.Method, _ path: String, _ endpoint: Endpoint,
        _ handler: @escaping @Sendable (Request, GatewayContext) async throws -> Response
    ) {
        operations.append((method, path, endpoint))
        // The route table enforces who may call: a handler runs only for the callers its endpoint declares.
        group.on(RouterPath(path), method: method) { request, context in
            try endpoint.access.check(context)
            return try await handler(request, context)
        }
    }

    /// Answers 405, with `Allow`, for the methods a documented path does not take (the router would answer 404, as
    /// if the path did not exist).
    func refuseOtherMethods() {
        let methods: [HTTPRequest.Method] = [.get, .post, .put, .patch, .delete, .options, .trace, HTTPRequest.Method("QUERY")!]
        var taken: [String: [HTTPRequest.Method]] = [:]
        for (method, path, _) in operations { taken[path, default: []].append(method) }
        for (path, allowed) in taken {
            let allow = allowed.map(\.rawValue).sorted().joined(separator: ", ")
            for method in methods where !allowed.contains(method) {
                group.on(RouterPath(path), method: method) { _, _ -> Response in
                    throw Problem(.methodNotAllowed, rule: "method-not-allowed", title: "Method not allowed",
                                  detail: "\(self.prefix)\(path) takes \(allow)", headers: [.allow: allow])
                }
            }
        }
    }

    /// The OpenAPI 3.1 document of the routes, with `schemas` as its components.
    public func document(title: String, version: String, description: String, schemas: [String: JSON]) -> JSON {
        var paths: [String: [String: JSON]] = [:]
        for (method, path, endpoint) in operations {
            paths[prefix + path, default: [:]][method.rawValue.lowercased()] = endpoint.document()
        }
        return [
            "openapi": "3.1.0",
            "info": ["title": .string(title), "version": .string(version), "description": .string(description)],
            "paths": .object(paths.mapValues { .object($0) }),
            "components": [
                "schemas": .object(schemas.merging(["Problem": Self.problem]) { first, _ in first }),
                "securitySchemes": ["bearer": ["type": "http", "scheme": "bearer", "bearerFormat": "JWT"]],
            ],
        ]
    }

    /// Serves the document at `path`.
    ///
    /// Call it once every route is registered: the methods a path does not take are then answered 405.
    public func serve(_ document: JSON, at path: String, on router: Router<GatewayContext>) throws {
        refuseOtherMethods()
        let bytes = try JSONEncoder.sortedKeys.encode(document)
        router.get(RouterPath(path)) { _, _ in
            Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: .init(bytes: bytes)))
        }
    }

    /// RFC 9457.
    static let problem = Schema.object(
        ["type": Schema.string, "title": Schema.string, "status": Schema.integer],
        optional: ["detail": Schema.string, "rule": Schema.string, "instance": Schema.string])
}
