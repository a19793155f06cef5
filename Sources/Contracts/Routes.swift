import Foundation

// Where each context's published operations are: the paths the BFFs and the saga call, built in one place, with
// every id percent-encoded as a path segment and every query value as a query value.

/// Catalog's routes.
public enum CatalogRoutes {
    /// `GET`: a page of products, or of those matching `search`; `POST /products`: a new product.
    public static func products(search: String? = nil, limit: String? = nil, after: String? = nil) -> String {
        withQuery(search == nil ? "/products" : "/products/search", ["q": search, "limit": limit, "after": after])
    }
    public static func product(_ sku: String) -> String { "/products/\(segment(sku))" }
    /// `PUT`: a new price.
    public static func price(_ sku: String) -> String { "/products/\(segment(sku))/price" }
    /// `POST`: no longer for sale.
    public static func discontinue(_ sku: String) -> String { "/products/\(segment(sku))/discontinue" }
    /// `POST` (``CatalogCommands/Receive``): units received, or returned.
    public static func stock(_ sku: String) -> String { "/products/\(segment(sku))/stock" }
    /// `POST` (``CatalogCommands/Reserve``): every line reserved for the order, or none.
    public static let reservations = "/reservations"
    /// `POST`: releases the order's reservation of one SKU (nothing if there is none; 422
    /// `reservation-already-committed` once committed).
    public static func release(sku: String, order: String) -> String { "/stock/\(segment(sku))/reservations/\(segment(order))/release" }
    /// `POST`: the reserved units leave with the order.
    public static func commit(sku: String, order: String) -> String { "/stock/\(segment(sku))/reservations/\(segment(order))/commit" }
    /// `GET`: ``CatalogFeed`` after a position.
    public static func feed(after: String, limit: Int, wait: Int? = nil) -> String {
        withQuery("/feed/products", ["after": after, "limit": String(limit), "wait": wait.map(String.init)])
    }
}

/// Ordering's routes.
public enum OrderingRoutes {
    public static func cart(_ customer: String) -> String { "/carts/\(segment(customer))" }
    public static func cartItems(_ customer: String) -> String { "/carts/\(segment(customer))/items" }
    public static func cartItem(_ customer: String, sku: String) -> String { "/carts/\(segment(customer))/items/\(segment(sku))" }
    /// `POST`: the cart becomes an order, and its saga starts.
    public static func checkout(_ customer: String) -> String { "/carts/\(segment(customer))/checkout" }
    public static func order(_ id: String) -> String { "/orders/\(segment(id))" }
    /// `GET`: the order with its saga's timeline, from the order history view; `ownWrites`: once the view has every
    /// write acknowledged before the read (`minPosition=head`), on whichever instance it was made.
    public static func orderDetail(_ id: String, ownWrites: Bool = false) -> String {
        withQuery("/orders/\(segment(id))/detail", ["minPosition": ownWrites ? "head" : nil])
    }
    public static func cancel(_ id: String) -> String { "/orders/\(segment(id))/cancel" }
    public static func ship(_ id: String) -> String { "/orders/\(segment(id))/ship" }
    /// `GET`: the customer's orders, newest first, from the order history view; `ownWrites` as for ``orderDetail(_:ownWrites:)``.
    public static func orders(of customer: String, limit: Int, ownWrites: Bool = false) -> String {
        withQuery("/customers/\(segment(customer))/orders", ["limit": String(limit), "minPosition": ownWrites ? "head" : nil])
    }
    /// `GET`: the sagas, only those in `status` if given.
    public static func sagas(status: String? = nil) -> String { withQuery("/admin/sagas", ["status": status]) }
    /// `GET`: a saga with its timeline.
    public static func saga(_ id: String) -> String { "/admin/sagas/\(segment(id))" }
    /// `POST`: a parked saga re-driven.
    public static func retrySaga(_ id: String) -> String { "/admin/sagas/\(segment(id))/retry" }
    /// `GET`: ``OrderingFeed`` after a position.
    public static func feed(after: String, limit: Int, wait: Int? = nil) -> String {
        withQuery("/feed/orders", ["after": after, "limit": String(limit), "wait": wait.map(String.init)])
    }
}

/// Billing's routes.
public enum BillingRoutes {
    /// `GET`: ``BillingCommands/Payment``.
    public static func payment(_ order: String) -> String { "/payments/\(segment(order))" }
    /// `POST` (``BillingCommands/Authorise``).
    public static func authorise(_ order: String) -> String { "/payments/\(segment(order))/authorise" }
    /// `POST` (``BillingCommands/Amount``).
    public static func capture(_ order: String) -> String { "/payments/\(segment(order))/capture" }
    public static func void(_ order: String) -> String { "/payments/\(segment(order))/void" }
    /// `POST` (``BillingCommands/Amount``).
    public static func refund(_ order: String) -> String { "/payments/\(segment(order))/refund" }
}

/// Every context service's views (operators' routes).
public enum ViewRoutes {
    /// `GET`: each view with its position, lag and rate.
    public static let views = "/admin/views"
    /// `POST`: the view rebuilt from the first event while the current one serves, then swapped in.
    public static func rebuild(_ name: String) -> String { "/admin/views/\(segment(name))/rebuild" }
}

/// A path segment, percent-encoded: ids may hold characters a URL path cannot, or that would end the segment.
public func segment(_ text: String) -> String {
    text.addingPercentEncoding(withAllowedCharacters: unreserved) ?? text
}

/// `path` with the values that are given as its query, in the order given.
func withQuery(_ path: String, _ values: KeyValuePairs<String, String?>) -> String {
    let query = values.compactMap { name, value in value.map { "\(name)=\(segment($0))" } }
    return query.isEmpty ? path : path + "?" + query.joined(separator: "&")
}

/// RFC 3986's unreserved characters: everything else is percent-encoded, in a segment and in a query value alike.
private let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
