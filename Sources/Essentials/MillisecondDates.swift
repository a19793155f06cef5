import Foundation

extension JSONEncoder {
    /// The shop's JSON: dates in ISO 8601 with milliseconds (UTC), rounded to the nearest millisecond. Events,
    /// replies and pages all encode dates so.
    public static var millisecondDates: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .custom { date, encoder in
            var container = encoder.singleValueContainer()
            try container.encode(EventDate.format(date))
        }
        return encoder
    }
}

extension JSONDecoder {
    /// The shop's JSON read back: ISO 8601 dates, with or without fractional seconds, to the millisecond.
    public static var millisecondDates: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .custom { decoder in
            let container = try decoder.singleValueContainer()
            let text = try container.decode(String.self)
            guard let date = EventDate.parse(text) else {
                throw DecodingError.dataCorruptedError(in: container, debugDescription: "'\(text)' is not an ISO 8601 date")
            }
            return date
        }
        return decoder
    }
}

/// Dates in stored events: ISO 8601, UTC, milliseconds.
enum EventDate {
    static func format(_ date: Date) -> String {
        let milliseconds = Int64((date.timeIntervalSince1970 * 1000).rounded())
        let (seconds, fraction) = milliseconds.quotientAndRemainder(dividingBy: 1000)
        let (wholeSeconds, millis) = fraction < 0 ? (seconds - 1, fraction + 1000) : (seconds, fraction)
        let base = Date(timeIntervalSince1970: Double(wholeSeconds)).formatted(.iso8601)  // 2026-09-21T14:13:20Z
        let padded = String(millis + 1000).dropFirst()
        return "\(base.dropLast()).\(padded)Z"
    }

    static func parse(_ text: String) -> Date? {
        guard let date = (try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text))
            ?? (try? Date.ISO8601FormatStyle().parse(text))
        else { return nil }
        return Date(timeIntervalSince1970: (date.timeIntervalSince1970 * 1000).rounded() / 1000)
    }
}
