/// The characters no text of the shop may carry to a screen as they are: C0 controls (NUL, ESC, newlines…), DEL, C1
/// controls (a terminal may take U+009B as the start of a command) and the bidirectional overrides and isolates
/// (which make text read otherwise than it is stored). The services refuse them in what they would store; the
/// operator's and the customer's tools print them escaped.
public enum ControlCharacters {
    public static func isControl(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F, 0x202A...0x202E, 0x2066...0x2069: true
        default: false
        }
    }

    public static func contained(in text: some StringProtocol) -> Bool {
        text.unicodeScalars.contains(where: isControl)
    }

    /// `text` with each control character written as `\u{…}`, but those in `keeping` (a table's own newlines).
    public static func escaped(_ text: String, keeping kept: Set<Unicode.Scalar> = []) -> String {
        guard text.unicodeScalars.contains(where: { isControl($0) && !kept.contains($0) }) else { return text }
        var escaped = ""
        for scalar in text.unicodeScalars {
            if isControl(scalar), !kept.contains(scalar) {
                escaped += "\\u{\(String(scalar.value, radix: 16, uppercase: true))}"
            } else {
                escaped.unicodeScalars.append(scalar)
            }
        }
        return escaped
    }
}
