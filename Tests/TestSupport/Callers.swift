import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import AsyncHTTPClient
import Identity
import ServiceKit
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

/// `GET path` of the service `audience` on `port`, as the BFF calls it, on a connection of its own: the test clients
/// send one request at a time, so a long poll on one would hold up every other request.
public func getAlone(port: Int, audience: String, _ path: String, timeout: Duration = .seconds(60)) async throws -> (status: Int, body: Data) {
    var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)\(path)")
    request.headers.add(name: "Authorization", value: try await ServiceIdentity(name: "bff", secret: TestSecrets.service).authorization(to: audience))
    let response = try await HTTPClient.shared.execute(request, timeout: .nanoseconds(Int64(timeout.components.seconds) * 1_000_000_000))
    let body = try await response.body.collect(upTo: 1 << 20)
    return (Int(response.status.code), Data(buffer: body))
}

extension ConnectionTimeoutConfigurable {
    /// The configuration with connections kept for ten minutes: a test client holds one connection and never opens
    /// another, so a server's 30 s timeouts would cut off a client that a long test leaves idle.
    public var forTests: Self {
        var configuration = self
        configuration.connectionTimeout = .seconds(600)
        return configuration
    }
}
