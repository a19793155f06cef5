import SharedKernel

/// Everything shop-admin prints goes through here (it shadows `Swift.print` in this module): text from the stores
/// (a customer's cancel reason, a product's name) may hold control characters, and an escape sequence sent raw to the
/// operator's terminal can rewrite the screen or the window title. They are printed escaped, as `\u{1B}`, but the
/// tabs and newlines of shop-admin's own tables.
func print(_ items: Any..., separator: String = " ", terminator: String = "\n") {
    Swift.print(escapingControls(items.map { "\($0)" }.joined(separator: separator)), terminator: terminator)
}

func escapingControls(_ text: String) -> String {
    ControlCharacters.escaped(text, keeping: ["\t", "\n"])
}
