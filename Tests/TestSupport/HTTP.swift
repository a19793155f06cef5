import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Identity
import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import ServiceRuntime

extension TestClientProtocol {
    /// A request as a client of the services sends it: a JSON body and a fresh `Idempotency-Key` unless told
    /// otherwise (`key: nil` sends none, `contentType: ""` no Content-Type).
    @discardableResult
    public func send(
        _ method: HTTPRequest.Method, _ uri: String, _ json: String? = nil, key: String? = UUID().uuidString,
        ifMatch: String? = nil, contentType: String = "application/json"
    ) async throws -> TestResponse {
        var headers: HTTPFields = contentType.isEmpty ? [:] : [.contentType: contentType]
        if let key { headers[HTTPField.Name("Idempotency-Key")!] = key }
        if let ifMatch { headers[.ifMatch] = ifMatch }
        return try await execute(uri: uri, method: method, headers: headers, body: json.map { ByteBuffer(string: $0) })
    }

    /// `GET uri`, as a JSON object.
    public func object(_ uri: String) async throws -> [String: Any] {
        try await execute(uri: uri, method: .get).object
    }
}

extension TestResponse {
    /// The body as a JSON object (empty if it is not one).
    public var object: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(buffer: body)) as? [String: Any]) ?? [:] }
    /// A problem document's `rule`.
    public var rule: String? { object["rule"] as? String }
}

/// Sends one request `copies` times at once, as the BFF would to the service `audience`, each over a connection of its own (the test client sends one request
/// at a time, so its requests never overlap): what a client's retry that overlaps its first attempt looks like.
/// Answers each reply's status and body, in the order sent.
public func sendAtOnce(
    copies: Int = 2, port: Int, audience: String, _ method: HTTPMethod, _ path: String, _ json: String?, key: String
) async throws -> [(status: Int, body: String)] {
    let authorization = try await ServiceIdentity(name: "bff", secret: TestSecrets.service).authorization(to: audience)
    return try await withThrowingTaskGroup(of: (Int, (status: Int, body: String)).self) { group in
        for copy in 0..<copies {
            group.addTask {
                var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
                request.method = method
                request.headers.add(name: "Content-Type", value: "application/json")
                request.headers.add(name: "Idempotency-Key", value: key)
                request.headers.add(name: "Authorization", value: authorization)
                if let json { request.body = .bytes(ByteBuffer(string: json)) }
                let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
                let body = try await response.body.collect(upTo: 1 << 20)
                return (copy, (Int(response.status.code), String(buffer: body)))
            }
        }
        var replies = [(status: Int, body: String)?](repeating: nil, count: copies)
        for try await (copy, reply) in group { replies[copy] = reply }
        return replies.map { $0! }
    }
}
