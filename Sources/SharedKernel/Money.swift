/// An amount of money: an integer number of minor units (cents) and a currency. Never floating point.
///
/// Amounts are never negative and never absurd (at most ``maximumMinorUnits``); arithmetic refuses to mix
/// currencies or to overflow. Every context speaks it, so it is the shared kernel rather than any one
/// context's type.
public struct Money: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let minorUnits: Int64
    public let currency: Currency

    /// 100 million in major units: more than any order in this shop, far less than `Int64.max`.
    public static let maximumMinorUnits: Int64 = 10_000_000_000

    public init(minorUnits: Int64, currency: Currency) throws(MoneyError) {
        guard minorUnits >= 0 else { throw .negative(minorUnits) }
        guard minorUnits <= Self.maximumMinorUnits else { throw .tooLarge(minorUnits) }
        self.minorUnits = minorUnits
        self.currency = currency
    }

    public static func zero(_ currency: Currency) -> Money { Money(unchecked: 0, currency) }

    private init(unchecked minorUnits: Int64, _ currency: Currency) {
        self.minorUnits = minorUnits
        self.currency = currency
    }

    public var isZero: Bool { minorUnits == 0 }

    public func adding(_ other: Money) throws(MoneyError) -> Money {
        try checkCurrency(other)
        return try Money(minorUnits: minorUnits + other.minorUnits, currency: currency)
    }

    /// `self - other`; refuses to go below zero.
    public func subtracting(_ other: Money) throws(MoneyError) -> Money {
        try checkCurrency(other)
        return try Money(minorUnits: minorUnits - other.minorUnits, currency: currency)
    }

    public func multiplied(by factor: Int) throws(MoneyError) -> Money {
        let (product, overflow) = minorUnits.multipliedReportingOverflow(by: Int64(factor))
        guard !overflow else { throw .tooLarge(Int64.max) }
        return try Money(minorUnits: product, currency: currency)
    }

    public func checkCurrency(_ other: Money) throws(MoneyError) {
        guard other.currency == currency else { throw .currencyMismatch(expected: currency, actual: other.currency) }
    }

    /// Only meaningful within one currency; across currencies it orders by currency code first.
    public static func < (lhs: Money, rhs: Money) -> Bool {
        (lhs.currency.code, lhs.minorUnits) < (rhs.currency.code, rhs.minorUnits)
    }

    public var description: String {
        let major = minorUnits / 100, minor = minorUnits % 100
        return "\(major).\(minor < 10 ? "0" : "")\(minor) \(currency.code)"
    }
}

extension Money: Codable {
    enum CodingKeys: String, CodingKey { case amount, currency }

    /// `{"amount": 1250, "currency": "EUR"}`, amount in minor units; decoding validates.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        let amount = try container.decode(Int64.self, forKey: .amount)
        let currency = try container.decode(Currency.self, forKey: .currency)
        do {
            try self.init(minorUnits: amount, currency: currency)
        } catch {
            throw DecodingError.dataCorruptedError(forKey: .amount, in: container, debugDescription: error.description)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(minorUnits, forKey: .amount)
        try container.encode(currency, forKey: .currency)
    }
}

/// An ISO 4217 currency that the shop trades in.
public struct Currency: Hashable, Sendable, CustomStringConvertible {
    public let code: String

    /// The currencies the shop accepts: all with two decimal places, so minor units are hundredths.
    public static let supported: Set<String> = ["EUR", "USD", "GBP", "CHF", "SEK"]

    public static let eur = Currency(unchecked: "EUR")
    public static let usd = Currency(unchecked: "USD")
    public static let gbp = Currency(unchecked: "GBP")

    public init(_ code: String) throws(MoneyError) {
        guard Self.supported.contains(code) else { throw .unsupportedCurrency(code) }
        self.code = code
    }

    private init(unchecked code: String) { self.code = code }

    public var description: String { code }
}

extension Currency: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let code = try container.decode(String.self)
        do { try self.init(code) } catch {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: error.description)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(code)
    }
}

public enum MoneyError: Error, Hashable, CustomStringConvertible {
    case negative(Int64)
    case tooLarge(Int64)
    case currencyMismatch(expected: Currency, actual: Currency)
    case unsupportedCurrency(String)

    public var description: String {
        switch self {
        case .negative(let amount): "an amount cannot be negative (\(amount))"
        case .tooLarge(let amount): "an amount of \(amount) minor units is more than the shop handles (\(Money.maximumMinorUnits))"
        case .currencyMismatch(let expected, let actual): "expected an amount in \(expected), got \(actual)"
        case .unsupportedCurrency(let code):
            "'\(code.prefix(10))' is not a currency the shop accepts (\(Currency.supported.sorted().joined(separator: ", ")))"
        }
    }
}
