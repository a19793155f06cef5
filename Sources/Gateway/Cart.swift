import Contracts
import Foundation
import Hummingbird
import ServiceKit

/// The cart's commands, the same in both BFFs (only what they answer differs): add a product, set its quantity,
/// take it out, empty the cart. Each acts for the token's customer, then answers with `respond`.
public struct CartCommands: Sendable {
    let services: Downstreams

    public init(services: Downstreams) { self.services = services }

    struct AddItem: Codable, Sendable { let sku: String, quantity: Int }
    struct SetQuantity: Codable, Sendable { let quantity: Int }

    public func addRoutes(
        to api: DocumentedRoutes, answer: Endpoint.Answer,
        respond: @escaping @Sendable (_ customer: String, Request, GatewayContext) async throws -> Response
    ) {
        let sku = Endpoint.Parameter.sku
        let services = self.services

        api.on(.post, "/cart/items", Endpoint(
            "addToCart", "Adds a quantity of a product to the cart.", access: .customer,
            body: (Schema.object(["sku": Schema.string, "quantity": Schema.integer(minimum: 1, maximum: 99)]), ["sku": "MUG-001", "quantity": 2]),
            command: true, answers: [200: answer],
            errors: [404: "There is no such product.", 409: "The product is discontinued.", 422: "The quantity is not 1 to 99."])
        ) { request, context in
            let customer = try context.customer()
            let body = try JSONBody.decode(AddItem.self, from: try await JSONBody.bytes(of: request))
            try await services.ordering.forward(.POST, OrderingRoutes.cartItems(customer), json: body, for: request, context: context).requireSuccess()
            return try await respond(customer, request, context)
        }
        api.on(.put, "/cart/items/{sku}", Endpoint(
            "setCartQuantity", "Sets how many of a product the cart holds (0 removes it).", access: .customer, path: [sku],
            body: (Schema.object(["quantity": Schema.integer(minimum: 0, maximum: 99)]), ["quantity": 3]), command: true,
            answers: [200: answer], errors: [422: "The quantity is not 0 to 99."])
        ) { request, context in
            let customer = try context.customer(), sku = try context.parameters.text("sku")
            let body = try JSONBody.decode(SetQuantity.self, from: try await JSONBody.bytes(of: request))
            try await services.ordering.forward(.PUT, OrderingRoutes.cartItem(customer, sku: sku), json: body, for: request, context: context)
                .requireSuccess()
            return try await respond(customer, request, context)
        }
        api.on(.delete, "/cart/items/{sku}", Endpoint(
            "removeFromCart", "Takes a product out of the cart.", access: .customer, path: [sku], command: true, answers: [200: answer],
            errors: [422: "The product is not in the cart."])
        ) { request, context in
            let customer = try context.customer(), sku = try context.parameters.text("sku")
            try await services.ordering.forward(.DELETE, OrderingRoutes.cartItem(customer, sku: sku), for: request, context: context)
                .requireSuccess()
            return try await respond(customer, request, context)
        }
        api.on(.delete, "/cart", Endpoint("clearCart", "Empties the cart.", access: .customer, command: true, answers: [200: answer])) {
            request, context in
            let customer = try context.customer()
            try await services.ordering.forward(.DELETE, OrderingRoutes.cart(customer), for: request, context: context).requireSuccess()
            return try await respond(customer, request, context)
        }
    }
}
