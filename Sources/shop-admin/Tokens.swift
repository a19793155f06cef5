import ArgumentParser
import Foundation
import Identity

struct Tokens: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Bearer tokens for the BFFs.",
        subcommands: [Issue.self]
    )

    struct Issue: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a signed bearer token (HS256) for a customer or an admin.",
            discussion: "The BFFs verify it with the same secret: $SHOP_TOKEN_SECRET, at least 32 bytes.")

        @Option(help: "The customer the token speaks for.")
        var customer: String?

        @Option(help: "An admin's name: the token has the admin role.")
        var admin: String?

        @Option(help: "Seconds until it expires.")
        var expiresIn: Int = 3600

        @Option(help: "The signing secret (default: $SHOP_TOKEN_SECRET).")
        var secret: String?

        func validate() throws {
            guard (customer == nil) != (admin == nil) else { throw ValidationError("give exactly one of --customer ID and --admin NAME") }
            if let name = customer ?? admin, !(1...64).contains(name.count) || name.contains(where: { $0.isNewline }) {
                throw ValidationError("an id or name is 1 to 64 characters on one line")
            }
            guard (1...31_536_000).contains(expiresIn) else { throw ValidationError("--expires-in is 1 to 31536000 seconds") }
        }

        func run() async throws {
            guard let text = secret ?? ProcessInfo.processInfo.environment["SHOP_TOKEN_SECRET"], !text.isEmpty else {
                throw Failure("SHOP_TOKEN_SECRET is not set (or pass --secret)")
            }
            let signer: TokenSigner
            do { signer = try await TokenSigner(secret: Data(text.utf8)) } catch { throw Failure("\(error)") }
            let now = Date()
            let claims = Claims(subject: customer ?? admin ?? "", role: admin == nil ? .customer : .admin,
                                issuedAt: now, expiresAt: now.addingTimeInterval(Double(expiresIn)))
            print(try await signer.issue(claims))
        }
    }
}
