import Foundation
import Hummingbird
import SharedKernel

/// Text from clients that the shop will store or pass on: checked in one place, so that no service stores what
/// PostgreSQL refuses (a NUL), what would rewrite an operator's terminal (escape sequences) or what reads
/// otherwise than it is (bidirectional overrides).
public enum Text {
    /// Whether `text` holds a control character: C0 (NUL, ESC, newlines…), DEL, C1, or a bidirectional override
    /// or isolate.
    public static func hasControlCharacter(_ text: some StringProtocol) -> Bool {
        ControlCharacters.contained(in: text)
    }

    static func isControl(_ scalar: Unicode.Scalar) -> Bool { ControlCharacters.isControl(scalar) }

    /// Whether JSON text (a request body) holds a control character in one of its strings, raw or escaped
    /// (`\u0000`, `\n`): one scan of the bytes, without decoding. Whitespace between tokens is not in a string.
    public static func jsonHasControlCharacter(_ json: Data) -> Bool {
        let bytes = [UInt8](json)
        var inString = false, escaped = false
        for index in bytes.indices {
            let byte = bytes[index]
            guard inString else {
                if byte == UInt8(ascii: "\"") { inString = true }
                continue
            }
            if escaped {
                escaped = false
                if Self.controlEscapes.contains(byte) { return true }  // \n, \r, \t, \b, \f
                if byte == UInt8(ascii: "u"), let scalar = hexScalar(bytes, after: index), isControl(scalar) { return true }
            } else if byte == UInt8(ascii: "\\") {
                escaped = true
            } else if byte == UInt8(ascii: "\"") {
                inString = false
            } else if byte < 0x20 || byte == 0x7F {
                return true
            } else if byte == 0xC2, index + 1 < bytes.count, (0x80...0x9F).contains(bytes[index + 1]) {
                return true  // C1, in UTF-8
            } else if byte == 0xE2, index + 2 < bytes.count,
                      (bytes[index + 1] == 0x80 && (0xAA...0xAE).contains(bytes[index + 2]))
                        || (bytes[index + 1] == 0x81 && (0xA6...0xA9).contains(bytes[index + 2])) {
                return true  // a bidirectional override or isolate, in UTF-8
            }
        }
        return false
    }

    /// The letters of JSON's short escapes of control characters.
    private static let controlEscapes: Set<UInt8> = Set("nrtbf".utf8)

    /// The scalar of the four hex digits after `index` (a `\u` escape), if they are hex.
    private static func hexScalar(_ bytes: [UInt8], after index: Int) -> Unicode.Scalar? {
        guard index + 4 < bytes.count else { return nil }
        return UInt32(String(decoding: bytes[index + 1...index + 4], as: UTF8.self), radix: 16).flatMap(Unicode.Scalar.init)
    }

    public static let controlCharacterProblem = Problem.badRequest(
        "control-character", "text may not hold control characters (NUL, C0 or C1 controls, bidirectional overrides)")
}

extension Request {
    /// A query parameter's text (Hummingbird has percent-decoded it), refused (400) when it holds a control character.
    public func query(_ name: String) throws -> String? {
        guard let value = uri.queryParameters.get(name) else { return nil }
        guard !Text.hasControlCharacter(value) else { throw Text.controlCharacterProblem }
        return value
    }
}

extension Parameters {
    /// A path parameter as the client meant it: percent-decoded (a customer `Zoë Smith` arrives as
    /// `Zo%C3%AB%20Smith`), and refused (400) when it does not decode or holds a control character.
    public func text(_ name: String) throws -> String {
        let raw = try require(name)
        guard let decoded = raw.removingPercentEncoding else {
            throw Problem.badRequest("malformed-path", "the path's \(name) is not valid percent-encoded UTF-8")
        }
        guard !Text.hasControlCharacter(decoded) else { throw Text.controlCharacterProblem }
        return decoded
    }
}
