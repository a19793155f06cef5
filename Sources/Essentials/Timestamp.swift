import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Timestamps as views store them: `2026-11-25T02:03:37Z`, exactly what `date.formatted(.iso8601)` gives, made
/// several times faster. A view writes one per event it applies, so a rebuild of millions of events feels it.
public enum Timestamp {
    public static func iso8601(_ date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(unsafeUninitializedCapacity: 20) { buffer in
            func digits(_ value: Int32, at start: Int, width: Int) {
                var value = value
                for index in stride(from: start + width - 1, through: start, by: -1) {
                    buffer[index] = UInt8(48 + value % 10)
                    value /= 10
                }
            }
            digits(parts.tm_year + 1900, at: 0, width: 4)
            buffer[4] = UInt8(ascii: "-")
            digits(parts.tm_mon + 1, at: 5, width: 2)
            buffer[7] = UInt8(ascii: "-")
            digits(parts.tm_mday, at: 8, width: 2)
            buffer[10] = UInt8(ascii: "T")
            digits(parts.tm_hour, at: 11, width: 2)
            buffer[13] = UInt8(ascii: ":")
            digits(parts.tm_min, at: 14, width: 2)
            buffer[16] = UInt8(ascii: ":")
            digits(parts.tm_sec, at: 17, width: 2)
            buffer[19] = UInt8(ascii: "Z")
            return 20
        }
    }
}
