import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import SharedKernel

/// Why a command failed, and the exit code that says so (documented in the README and `shop --help`).
struct Failure: Error {
    enum Kind: Int32 {
        case unexpected = 1, notSignedIn = 3, notFound = 4, refused = 5, rejected = 6, rateLimited = 7, unavailable = 8, processing = 9
    }
    let kind: Kind
    let message: String
    init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }
}

/// Where the client keeps its settings: `$XDG_CONFIG_HOME/shop/config.json` (else `~/.config/shop/`), mode 0600,
/// as it holds a bearer token.
struct Settings: Codable {
    var url: String?
    var token: String?

    static var file: URL {
        let environment = ProcessInfo.processInfo.environment
        let base = environment["XDG_CONFIG_HOME"].flatMap { $0.isEmpty ? nil : $0 }
            ?? ((environment["HOME"] ?? NSHomeDirectory()) + "/.config")
        return URL(fileURLWithPath: base).appendingPathComponent("shop").appendingPathComponent("config.json")
    }

    static func load() throws -> Settings {
        guard let data = FileManager.default.contents(atPath: file.path) else { return Settings() }
        do { return try JSONDecoder().decode(Settings.self, from: data) } catch {
            throw Failure(.unexpected, "\(file.path) is not a settings file of shop (delete it, then shop login)")
        }
    }

    func save() throws {
        let folder = Self.file.deletingLastPathComponent()
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            let data = try encoder.encode(self)
            // Created 0600 before the token is written into it.
            if !FileManager.default.fileExists(atPath: Self.file.path) {
                _ = FileManager.default.createFile(atPath: Self.file.path, contents: nil, attributes: [.posixPermissions: 0o600])
            }
            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: Self.file.path)
            try data.write(to: Self.file)
        } catch {
            throw Failure(.unexpected, "cannot write \(Self.file.path): \(error.localizedDescription)")
        }
    }
}

/// The CLI BFF, over HTTP: JSON in, JSON out, a problem document turned into a `Failure`.
struct Shop {
    let base: String
    let token: String?

    init(url: String?, requiresToken: Bool = true) throws {
        let environment = ProcessInfo.processInfo.environment
        let settings = try Settings.load()
        let base = url ?? environment["SHOP_URL"].flatMap { $0.isEmpty ? nil : $0 } ?? settings.url ?? "http://127.0.0.1:8080"
        guard let parsed = URL(string: base), ["http", "https"].contains(parsed.scheme ?? ""), parsed.host != nil else {
            throw Failure(.unexpected, "'\(base)' is not an http(s) URL of the shop")
        }
        self.base = base.hasSuffix("/") ? String(base.dropLast()) : base
        token = environment["SHOP_TOKEN"].flatMap { $0.isEmpty ? nil : $0 } ?? settings.token
        if requiresToken, token == nil {
            throw Failure(.notSignedIn, "not signed in: run 'shop login NAME' (or set SHOP_TOKEN)")
        }
    }

    /// The answer's status and body; a failure for anything but 2xx.
    @discardableResult
    func send(_ method: HTTPMethod, _ path: String, _ body: [String: Any]? = nil, authorised: Bool = true) async throws -> (status: Int, body: Data) {
        var request = HTTPClientRequest(url: base + "/cli/v1" + path)
        request.method = method
        if authorised, let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if method != .GET { request.headers.add(name: "Idempotency-Key", value: UUID().uuidString) }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(data: try JSONSerialization.data(withJSONObject: body)))
        }
        let response: HTTPClientResponse
        let data: Data
        do {
            response = try await HTTPClient.shared.execute(request, timeout: .seconds(45))
            data = Data(buffer: try await response.body.collect(upTo: 16 << 20))
        } catch {
            throw Failure(.unavailable, "cannot reach the shop at \(base) (is it running? bin/shop-up starts it)")
        }
        let status = Int(response.status.code)
        guard (200..<300).contains(status) else { throw Self.failure(status, data, retryAfter: response.headers.first(name: "Retry-After")) }
        return (status, data)
    }

    /// The JSON object of an answer.
    func object(_ method: HTTPMethod, _ path: String, _ body: [String: Any]? = nil, authorised: Bool = true) async throws -> JSONObject {
        try JSONObject(try await send(method, path, body, authorised: authorised).body)
    }

    static func failure(_ status: Int, _ data: Data, retryAfter: String?) -> Failure {
        let problem = (try? JSONSerialization.jsonObject(with: data) as? [String: Any]) ?? [:]
        let detail = ControlCharacters.escaped((problem["detail"] as? String) ?? (problem["title"] as? String) ?? "the shop answered \(status)")
        switch status {
        case 401: return Failure(.notSignedIn, "not signed in: \(detail) (shop login NAME signs in again)")
        case 403: return Failure(.notSignedIn, "not allowed: \(detail)")
        case 404: return Failure(.notFound, detail)
        case 422 where problem["rule"] as? String == "unknown-product": return Failure(.notFound, detail)
        case 409, 422: return Failure(.refused, detail)
        case 429: return Failure(.rateLimited, "too many requests: retry in \(retryAfter ?? "a few") s")
        case 502, 503, 504: return Failure(.unavailable, "the shop is unavailable: \(detail)")
        default: return Failure(.unexpected, "the shop answered \(status): \(detail)")
        }
    }
}

/// A JSON object as the BFF answers it, with typed lookups.
struct JSONObject {
    let value: [String: Any]
    let data: Data

    init(_ data: Data) throws {
        guard let value = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw Failure(.unexpected, "the shop answered something that is not a JSON object")
        }
        self.value = Self.printable(value) as? [String: Any] ?? value
        self.data = data
    }

    /// `value` with every string's control characters escaped: whatever the client prints of an answer (a product's
    /// name, an order's reason), on a table or as JSON, can then not send commands to the customer's terminal.
    static func printable(_ value: Any) -> Any {
        switch value {
        case let text as String: ControlCharacters.escaped(text)
        case let object as [String: Any]: object.mapValues(printable)
        case let array as [Any]: array.map(printable)
        default: value
        }
    }

    init(value: [String: Any]) {
        self.value = value
        data = (try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys])) ?? Data("{}".utf8)
    }

    subscript(key: String) -> String? { value[key] as? String }
    func int(_ key: String) -> Int? { value[key] as? Int }
    func object(_ key: String) -> JSONObject? { (value[key] as? [String: Any]).map { JSONObject(value: $0) } }
    func objects(_ key: String) -> [JSONObject] { (value[key] as? [[String: Any]] ?? []).map { JSONObject(value: $0) } }
}
