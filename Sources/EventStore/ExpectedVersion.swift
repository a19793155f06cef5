/// What an append expects of its stream. A stream's version is the number of events in it, so its first event
/// has version 1 and a stream with no events is at version 0.
public enum ExpectedVersion: Sendable, Hashable, CustomStringConvertible {
    /// Append whatever the stream's version.
    case any
    /// The stream must have no events yet (the same as `.exact(0)`).
    case noStream
    /// The stream must be at exactly this version: the version the writer read.
    case exact(Int64)

    /// What the store's `append_events` function takes: NULL for any, else the version.
    var sqlValue: Int64? {
        switch self {
        case .any: nil
        case .noStream: 0
        case .exact(let version): version
        }
    }

    public var description: String {
        switch self {
        case .any: "any"
        case .noStream: "no stream"
        case .exact(let version): "\(version)"
        }
    }
}
