/// Everything shop-admin prints goes through here (it shadows `Swift.print` in this module): text from the stores
/// (a customer's cancel reason, a product's name) may hold control characters, and an escape sequence sent raw to the
/// operator's terminal can rewrite the screen or the window title. They are printed escaped, as `\u{1B}`.
func print(_ items: Any..., separator: String = " ", terminator: String = "\n") {
    Swift.print(escapingControls(items.map { "\($0)" }.joined(separator: separator)), terminator: terminator)
}

/// `text` with every control character (C0 but tab and newline, which shop-admin's own tables use; DEL, C1,
/// bidirectional overrides and isolates) written as `\u{…}`.
func escapingControls(_ text: String) -> String {
    guard text.unicodeScalars.contains(where: isControl) else { return text }
    var escaped = ""
    for scalar in text.unicodeScalars {
        if isControl(scalar) {
            escaped += "\\u{\(String(scalar.value, radix: 16, uppercase: true))}"
        } else {
            escaped.unicodeScalars.append(scalar)
        }
    }
    return escaped
}

private func isControl(_ scalar: Unicode.Scalar) -> Bool {
    switch scalar.value {
    case 0x09, 0x0A: false
    case 0x00...0x1F, 0x7F...0x9F, 0x202A...0x202E, 0x2066...0x2069: true
    default: false
    }
}
