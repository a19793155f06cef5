/// The name of a stream: `category-id`, for example `product-MUG-001` or `order-7f3c…`.
///
/// The category (the part before the first `-`) says what kind of entity the stream holds; consumers use it
/// to pick the streams they care about. Names are 1 to 200 characters with no control characters.
public struct StreamName: Hashable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral, Comparable {
    public let rawValue: String

    public static let maximumLength = 200

    public init(_ rawValue: String) throws(EventStoreError) {
        guard !rawValue.isEmpty, rawValue.utf8.count <= Self.maximumLength,
            !rawValue.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
        else {
            throw .invalidAppend("'\(rawValue.prefix(Self.maximumLength))' is not a stream name: 1 to \(Self.maximumLength) bytes, no control characters")
        }
        self.rawValue = rawValue
    }

    /// `category-id`. The category must not contain `-`.
    public init(category: String, id: String) throws(EventStoreError) {
        guard !category.isEmpty, !category.contains("-") else {
            throw .invalidAppend("'\(category)' is not a stream category: it must be non-empty and contain no '-'")
        }
        try self.init("\(category)-\(id)")
    }

    public init(stringLiteral value: String) {
        do { try self.init(value) } catch { preconditionFailure("\(error)") }
    }

    /// Read back from the store, which only holds valid names.
    init(stored rawValue: String) { self.rawValue = rawValue }

    public var category: Substring { rawValue.prefix { $0 != "-" } }
    public var description: String { rawValue }
    public static func < (lhs: StreamName, rhs: StreamName) -> Bool { lhs.rawValue < rhs.rawValue }
}
