import Catalog
import ServiceKit

extension CatalogError: ProblemConvertible {
    /// The one place where Catalog's rules become HTTP statuses.
    public var problem: Problem {
        switch self {
        case .unknownProduct: .notFound(description)
        case .insufficientStock(_, _, let available):
            Problem(.unprocessableContent, rule: rule, title: "The request breaks a rule", detail: description,
                    extensions: ["available": Int64(available)])
        default: .ruleBroken(rule, description)
        }
    }
}
