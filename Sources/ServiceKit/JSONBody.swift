import Essentials
import Foundation
import Hummingbird

/// Reading JSON request bodies strictly: a size limit (413), a JSON content type (415), and a decoding error
/// that says which member was wrong (400).
public enum JSONBody {
    /// The largest body a command may have.
    public static let maximumSize = 64 * 1024

    /// The request's body, checked for its type and size; a 400 if there is none.
    public static func bytes(of request: Request) async throws -> Data {
        guard let data = try await optionalBytes(of: request) else {
            throw Problem.badRequest("missing-body", "the request needs a JSON body")
        }
        return data
    }

    /// The request's body if it has one (checked as ``bytes(of:)``), `nil` if it is empty.
    public static func optionalBytes(of request: Request) async throws -> Data? {
        let buffer: ByteBuffer
        do {
            buffer = try await request.body.collect(upTo: maximumSize)
        } catch {
            throw Problem.contentTooLarge(limit: maximumSize)
        }
        guard buffer.readableBytes > 0 else { return nil }
        guard let contentType = request.headers[.contentType], isJSON(contentType) else {
            let sent = request.headers[.contentType].map { "not \(String($0.prefix(60)).debugDescription)" } ?? "with a Content-Type header"
            throw Problem(.unsupportedMediaType, rule: "unsupported-media-type", title: "Unsupported media type",
                          detail: "send the body as application/json, \(sent)")
        }
        return Data(buffer: buffer)
    }

    /// Decodes the body; a string holding a control character anywhere in it is refused (400 control-character),
    /// before anything is decoded or stored.
    /// Whether a Content-Type names JSON: `application/json`, with parameters or not (`; charset=utf-8`), in any case.
    static func isJSON(_ contentType: String) -> Bool {
        contentType.split(separator: ";", maxSplits: 1).first?.trimmingCharacters(in: .whitespaces).lowercased() == "application/json"
    }

    /// The body as a `T`; a 400 if it is not one, or if what it holds of a `T` (the members a `T` has, encoded again)
    /// carries a control character. Members a `T` does not have are ignored, as JSON clients expect, whatever they hold.
    public static func decode<T: Codable>(_ type: T.Type, from data: Data) throws -> T {
        let value: T
        do {
            value = try JSONDecoder().decode(T.self, from: data)
        } catch let error as DecodingError {
            throw Problem.badRequest("malformed-json", explain(error))
        } catch {
            throw Problem.badRequest("malformed-json", "the body is not valid JSON")
        }
        guard let kept = try? JSONEncoder().encode(value), !Text.jsonHasControlCharacter(kept) else { throw Text.controlCharacterProblem }
        return value
    }

    static func explain(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            let path = context.codingPath.reduce(into: "") { path, key in
                if let index = key.intValue { path += "[\(index)]" } else { path += (path.isEmpty ? "" : ".") + key.stringValue }
            }
            return path.isEmpty ? "the body" : "'\(path)'"
        }
        switch error {
        case .typeMismatch(let type, let context): return "\(path(context)) must be \(describe(type))"
        case .valueNotFound(let type, let context): return "\(path(context)) must be \(describe(type)), not null"
        case .keyNotFound(let key, let context):
            let parent = context.codingPath.isEmpty ? "" : " in \(path(context))"
            return "'\(key.stringValue)' is missing\(parent)"
        case .dataCorrupted(let context):
            if context.codingPath.isEmpty { return "the body is not valid JSON" }
            return "\(path(context)): \(context.debugDescription)"
        @unknown default: return "the body does not have the expected shape"
        }
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Int.Type, is Int64.Type, is Int32.Type: "a whole number"
        case is Double.Type: "a number"
        case is Bool.Type: "true or false"
        default: "an object of the documented shape"
        }
    }
}

/// Entity tags are stream versions: `"3"`.
public enum ETag {
    public static func make(_ version: Int64) -> String { "\"\(version)\"" }

    /// The stream version an `If-Match` header expects; `nil` without one. A malformed header is a 400.
    public static func expectedVersion(_ request: Request) throws -> Int64? {
        guard let value = request.headers[.ifMatch] else { return nil }
        let trimmed = value.trimmingCharacters(in: .whitespaces)
        guard trimmed.count >= 3, trimmed.hasPrefix("\""), trimmed.hasSuffix("\""),
            let version = Int64(trimmed.dropFirst().dropLast()), version >= 0
        else { throw Problem.badRequest("malformed-if-match", "If-Match must be an entity tag such as \"3\" (the version read)") }
        return version
    }
}
