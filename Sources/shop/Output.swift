import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// What goes to the terminal: tables with aligned columns, colour only on a terminal (and never with
/// `NO_COLOR`), JSON as the BFF gave it for `--json`.
enum Output {
    static let isTerminal = isatty(STDOUT_FILENO) == 1
    static let colours = isTerminal && ProcessInfo.processInfo.environment["NO_COLOR"] == nil

    enum Style: String { case bold = "1", dim = "2", green = "32", red = "31", yellow = "33", cyan = "36" }

    static func styled(_ text: String, _ style: Style) -> String {
        colours ? "\u{1B}[\(style.rawValue)m\(text)\u{1B}[0m" : text
    }

    static func line(_ text: String = "") { write(text + "\n") }

    /// Written at once (also into a pipe). A reader that went away (`shop … | head`) ends the command quietly.
    static func write(_ text: String) {
        do { try FileHandle.standardOutput.write(contentsOf: Data(text.utf8)) } catch { exit(0) }
    }

    static func error(_ text: String) { try? FileHandle.standardError.write(contentsOf: Data("shop: \(text)\n".utf8)) }

    /// The answer's JSON, indented, for `--json`.
    static func json(_ object: JSONObject) {
        let data = (try? JSONSerialization.data(withJSONObject: object.value, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])) ?? object.data
        line(String(decoding: data, as: UTF8.self))
    }

    /// Columns padded to their widest cell (counted in characters, so that styling does not shift them);
    /// `right` columns are aligned right (numbers).
    static func table(_ header: [String], _ rows: [[String]], right: Set<Int> = []) {
        let widths = header.indices.map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        func render(_ cells: [String]) -> String {
            cells.enumerated().map { column, cell in
                let padding = String(repeating: " ", count: widths[column] - cell.count)
                return right.contains(column) ? padding + cell : (column == cells.count - 1 ? cell : cell + padding)
            }.joined(separator: "  ")
        }
        line(styled(render(header), .bold))
        for row in rows { line(render(row)) }
    }

    static func money(_ object: JSONObject?) -> String {
        guard let object, let amount = object.value["amount"] as? Int, let currency = object["currency"] else { return "-" }
        let sign = amount < 0 ? "-" : ""
        return "\(sign)\(abs(amount) / 100).\(String(format: "%02d", abs(amount) % 100)) \(currency)"
    }

    static func status(_ status: String) -> String {
        switch status {
        case "confirmed", "shipped": styled(status, .green)
        case "rejected", "cancelled": styled(status, .red)
        default: styled(status, .yellow)
        }
    }
}

/// A line that redraws itself on a terminal (a spinner and what is happening), or prints each change once
/// elsewhere.
final class Progress: @unchecked Sendable {  // its state is behind the lock
    private let lock = NSLock()
    private var text = ""
    private var printed = ""
    private var frame = 0
    private var ticker: Task<Void, Never>?
    static let frames = ["⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"]

    func start(_ text: String) {
        update(text)
        guard Output.isTerminal else { return }
        ticker = Task { [weak self] in
            while !Task.isCancelled {
                self?.draw()
                try? await Task.sleep(for: .milliseconds(100))  // the animation's frame rate
            }
        }
    }

    func update(_ text: String) {
        lock.withLock { self.text = text }
        if Output.isTerminal { draw() } else if lock.withLock({ printed != text }) {
            lock.withLock { printed = text }
            Output.line(text)
        }
    }

    private func draw() {
        let line = lock.withLock { () -> String in
            frame += 1
            return "\r\u{1B}[2K\(Output.styled(Self.frames[frame % Self.frames.count], .cyan)) \(text)"
        }
        Output.write(line)
    }

    func stop() {
        ticker?.cancel()
        if Output.isTerminal { Output.write("\r\u{1B}[2K") }
    }
}
