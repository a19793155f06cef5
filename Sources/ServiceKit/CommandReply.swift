import Essentials
import Foundation
import HTTPTypes
import Hummingbird

/// What a command answered. It is stored with the command's idempotency key, in the same transaction as the
/// command's events, so that a retry is answered the same way and acts no more.
public struct CommandReply: Sendable, Codable, Equatable {
    public var status: Int
    public var body: Data
    public var etag: String?
    public var location: String?

    public init(status: HTTPResponse.Status, body: Data, etag: String? = nil, location: String? = nil) {
        self.status = Int(status.code)
        self.body = body
        self.etag = etag
        self.location = location
    }

    /// A JSON reply.
    public static func json(_ status: HTTPResponse.Status, _ value: some Encodable, etag: String? = nil, location: String? = nil) throws -> CommandReply {
        CommandReply(status: status, body: try JSONEncoder.sortedKeys.encode(value), etag: etag, location: location)
    }

    // Stored with its body as text (bodies are JSON), so that the store can write positions into it
    // (`run_planned_command`); a body that is not UTF-8 is stored as base64, as it was before.
    private enum CodingKeys: String, CodingKey { case status, body, text, etag, location }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        status = try container.decode(Int.self, forKey: .status)
        if let text = try container.decodeIfPresent(String.self, forKey: .text) {
            body = Data(text.utf8)
        } else {
            body = try container.decode(Data.self, forKey: .body)
        }
        etag = try container.decodeIfPresent(String.self, forKey: .etag)
        location = try container.decodeIfPresent(String.self, forKey: .location)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(status, forKey: .status)
        if let text = String(validating: body, as: UTF8.self) {
            try container.encode(text, forKey: .text)
        } else {
            try container.encode(body, forKey: .body)
        }
        try container.encodeIfPresent(etag, forKey: .etag)
        try container.encodeIfPresent(location, forKey: .location)
    }

    public func response(replayed: Bool) -> Response {
        var headers: HTTPFields = [.contentType: status >= 400 ? "application/problem+json" : "application/json"]
        if let etag { headers[.eTag] = etag }
        if let location { headers[.location] = location }
        if replayed { headers[.idempotentReplayed] = "true" }
        return Response(status: .init(code: status), headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}

extension HTTPField.Name {
    public static let idempotencyKey = HTTPField.Name("Idempotency-Key")!
    public static let idempotentReplayed = HTTPField.Name("Idempotent-Replayed")!
}

extension JSONEncoder {
    /// Members in sorted order: the same value always encodes to the same bytes (replies, request bodies that a
    /// retry must repeat byte for byte, ETags of content). Dates as events have them: ISO 8601, UTC, milliseconds.
    public static var sortedKeys: JSONEncoder {
        let encoder = JSONEncoder.millisecondDates
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}
