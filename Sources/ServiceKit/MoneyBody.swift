import SharedKernel

/// An amount in a request body: `{"amount": 1250, "currency": "EUR"}`. Decoding checks only the shape;
/// ``money()`` checks the value (a 422 `invalid-money` when it is not one the shop accepts).
public struct MoneyBody: Codable, Sendable {
    public let amount: Int64
    public let currency: String

    public func money() throws -> Money {
        do { return try Money(minorUnits: amount, currency: try Currency(currency)) } catch {
            throw Problem.ruleBroken("invalid-money", error.description)
        }
    }
}
