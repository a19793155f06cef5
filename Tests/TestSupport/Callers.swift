import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Identity
import NIOCore

/// The secrets the tests' services and BFFs are configured with.
public enum TestSecrets {
    /// Signs the service tokens the shop's processes send each other (`SHOP_SERVICE_SECRET`).
    public static let serviceText = "the tests' service secret, long enough for HS256"
    public static let service = Data(serviceText.utf8)
    /// Signs customers' and admins' bearer tokens.
    public static let token = Data("the tests' token secret, long enough for HS256 too".utf8)
}

/// A test client that calls a service as one of the shop's processes would: each request carries a service token
/// for `audience`, unless the test sets its own `Authorization`.
public struct ServiceCaller: TestClientProtocol {
    let client: any TestClientProtocol
    let identity: ServiceIdentity
    let audience: String

    public func executeRequest(uri: String, method: HTTPRequest.Method, headers: HTTPFields, body: ByteBuffer?) async throws -> TestResponse {
        var headers = headers
        if headers[.authorization] == nil { headers[.authorization] = try await identity.authorization(to: audience) }
        return try await client.executeRequest(uri: uri, method: method, headers: headers, body: body)
    }

    public var port: Int? { client.port }
}

extension TestClientProtocol {
    /// This client, calling the service `audience` as the process `caller` (the BFF unless told).
    public func calling(_ audience: String, as caller: String = "bff", secret: Data = TestSecrets.service) async throws -> ServiceCaller {
        ServiceCaller(client: self, identity: try await ServiceIdentity(name: caller, secret: secret), audience: audience)
    }
}
