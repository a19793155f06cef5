import ArgumentParser
import CatalogService
import EventStore
import Foundation
import Hummingbird
import Logging

@main
struct ShopServer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shop-server",
        abstract: "Run one of the shop's services.",
        subcommands: [Catalog.self]
    )

    struct Catalog: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "The Catalog service: products, prices, stock and reservations.")

        @Option(help: "The address to listen on.")
        var host = "127.0.0.1"

        @Option(help: "The port to listen on (default: $SHOP_CATALOG_PORT, else 8081).")
        var port: Int?

        @Option(help: "Catalog's PostgreSQL URL (default: $SHOP_CATALOG_DATABASE_URL).")
        var databaseURL: String?

        func run() async throws {
            let environment = ProcessInfo.processInfo.environment
            guard let text = databaseURL ?? environment["SHOP_CATALOG_DATABASE_URL"] else {
                throw ValidationError("SHOP_CATALOG_DATABASE_URL is not set: run 'bin/db start', then 'eval \"$(bin/db env)\"' (or pass --database-url)")
            }
            let database: DatabaseURL
            do { database = try DatabaseURL(text) } catch { throw ValidationError("\(error)") }
            guard let port = port ?? environment["SHOP_CATALOG_PORT"].flatMap(Int.init) ?? Optional(8081), (0...65535).contains(port) else {
                throw ValidationError("SHOP_CATALOG_PORT is not a port number")
            }
            var logger = Logger(label: "catalog")
            logger.logLevel = environment["SHOP_LOG_LEVEL"].flatMap(Logger.Level.init(rawValue:)) ?? .info
            let app = CatalogService.application(.init(host: host, port: port, database: database), logger: logger)
            try await app.runService()
        }
    }
}
