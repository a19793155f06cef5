import Foundation
import Hummingbird
import HummingbirdTesting
import TestSupport
import Testing

@Suite("The shop client's output, as a process")
struct ShopOutputTests {
    /// Whatever an answer holds (a product's name, an order's reason), the client prints its control characters
    /// escaped, on a table and as JSON: nothing another customer or a compromised service wrote reaches the
    /// customer's terminal as a command.
    @Test(.timeLimit(.minutes(1)))
    func controlCharactersInAnswersArePrintedEscaped() async throws {
        let router = Router()
        router.get("/cli/v1/products/{sku}") { _, _ -> Response in
            let body = "{\"sku\":\"MUG-001\",\"name\":\"Mug\u{9B}2J\",\"description\":\"\u{202E}reversed\\u001b]0;title\\u0007\","
                + "\"price\":{\"amount\":100,\"currency\":\"EUR\"},\"available\":1}"
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: body)))
        }
        try await Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0))).test(.live) { client in
            let shop = try shopServerBinary().deletingLastPathComponent().appendingPathComponent("shop")
            let environment = ProcessInfo.processInfo.environment.merging(
                ["SHOP_URL": "http://127.0.0.1:\(try #require(client.port))", "NO_COLOR": "1",
                 "XDG_CONFIG_HOME": scratchViews().path]) { $1 }
            for arguments in [["products", "show", "MUG-001"], ["products", "show", "MUG-001", "--json"]] {
                let result = try await runProcess(shop, arguments, environment: environment)
                #expect(result.status == 0, "\(result)")
                #expect(result.output.contains("\\u{9B}2J") && result.output.contains("\\u{202E}reversed"), "\(result.output)")
                #expect(!result.output.unicodeScalars.contains { [0x9B, 0x202E, 0x1B, 0x07].contains($0.value) }, "\(arguments)")
            }
        }
    }
}
