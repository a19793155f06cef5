import Catalog
import ServiceKit

extension CatalogError {
    /// The one place where Catalog's rules become HTTP statuses.
    var problem: Problem {
        switch self {
        case .unknownProduct: .notFound(description)
        case .insufficientStock(_, _, let available):
            Problem(.unprocessableContent, rule: rule, title: "The request breaks a rule", detail: description,
                    extensions: ["available": Int64(available)])
        default: .ruleBroken(rule, description)
        }
    }
}

/// Runs domain code, turning its refusals into problem documents.
func refusing<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as CatalogError {
        throw error.problem
    }
}
