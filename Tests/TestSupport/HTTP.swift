import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting

extension TestClientProtocol {
    /// A request as a client of the services sends it: a JSON body and a fresh `Idempotency-Key` unless told
    /// otherwise (`key: nil` sends none).
    @discardableResult
    public func send(
        _ method: HTTPRequest.Method, _ uri: String, _ json: String? = nil, key: String? = UUID().uuidString,
        ifMatch: String? = nil, contentType: String = "application/json"
    ) async throws -> TestResponse {
        var headers: HTTPFields = [.contentType: contentType]
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
