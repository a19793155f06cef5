import SharedKernel

/// Catalog's published integration events: the public contract of its product data, served at
/// `GET /feed/products` and consumed by other contexts from a checkpoint. Deliberately separate from
/// Catalog's internal events, so that Catalog can change those without breaking its consumers; a change to
/// this contract is a new versioned type.
public enum CatalogFeed {
    public typealias Page = FeedPage<Event>
    public typealias Entry = FeedPage<Event>.Entry

    /// Type names are `catalog.v1.<fact>`.
    public enum Event: Codable, Sendable, Equatable {
        case productListed(sku: String, name: String, price: Money)
        case productRenamed(sku: String, name: String)
        case productRepriced(sku: String, price: Money)
        case productDiscontinued(sku: String)

        public var sku: String {
            switch self {
            case .productListed(let sku, _, _), .productRenamed(let sku, _), .productRepriced(let sku, _), .productDiscontinued(let sku): sku
            }
        }

        enum CodingKeys: String, CodingKey { case type, sku, name, price }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            let sku = try container.decode(String.self, forKey: .sku)
            switch try container.decode(String.self, forKey: .type) {
            case "catalog.v1.product-listed":
                self = .productListed(sku: sku, name: try container.decode(String.self, forKey: .name), price: try container.decode(Money.self, forKey: .price))
            case "catalog.v1.product-renamed":
                self = .productRenamed(sku: sku, name: try container.decode(String.self, forKey: .name))
            case "catalog.v1.product-repriced":
                self = .productRepriced(sku: sku, price: try container.decode(Money.self, forKey: .price))
            case "catalog.v1.product-discontinued":
                self = .productDiscontinued(sku: sku)
            case let type:
                throw DecodingError.dataCorruptedError(forKey: .type, in: container, debugDescription: "unknown catalog event type \(type)")
            }
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(sku, forKey: .sku)
            switch self {
            case .productListed(_, let name, let price):
                try container.encode("catalog.v1.product-listed", forKey: .type)
                try container.encode(name, forKey: .name)
                try container.encode(price, forKey: .price)
            case .productRenamed(_, let name):
                try container.encode("catalog.v1.product-renamed", forKey: .type)
                try container.encode(name, forKey: .name)
            case .productRepriced(_, let price):
                try container.encode("catalog.v1.product-repriced", forKey: .type)
                try container.encode(price, forKey: .price)
            case .productDiscontinued:
                try container.encode("catalog.v1.product-discontinued", forKey: .type)
            }
        }
    }
}
