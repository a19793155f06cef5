import ArgumentParser
import Foundation

struct Checkout: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Order what the cart holds and pay with a card; follows the order until it is confirmed or rejected.",
        discussion: "Test cards: 4242 4242 4242 4242 is approved, 4000 0000 0000 0002 declined, 4000 0000 0000 9995 declined for funds.")

    @OptionGroup var global: Global
    @Option(help: "The card number.") var card = "4242 4242 4242 4242"
    @Option(help: "Seconds to follow the order before leaving it processing.") var timeout = 60

    func validate() throws { guard (1...600).contains(timeout) else { throw ValidationError("--timeout is 1 to 600 seconds") } }

    func run() async throws {
        try await perform {
            let shop = try Shop(url: global.url)
            let placed = try await shop.object(.POST, "/checkout?wait=0", ["card": card])
            let order = try await Orders.follow(placed, on: shop, for: timeout, global)
            try Orders.report(order, global)
        }
    }
}

struct Orders: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Your orders.", subcommands: [List.self, Show.self, Cancel.self, Watch.self], defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Your latest orders.")
        @OptionGroup var global: Global

        func run() async throws {
            try await perform {
                let list = try await Shop(url: global.url).object(.GET, "/orders")
                if global.json { return Output.json(list) }
                let orders = list.objects("orders")
                guard !orders.isEmpty else { return Output.line("no orders yet") }
                Output.table(["ORDER", "STATUS", "TOTAL", "PLACED", "REASON"], orders.map { order in
                    [order["order"] ?? "", order["status"] ?? "", Output.money(order.object("total")), order["placedAt"] ?? "", order["reason"] ?? ""]
                }, right: [2])
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One order: its status, lines and total.")
        @OptionGroup var global: Global
        @Argument(help: "The order's id.") var id: String

        func run() async throws {
            try await perform {
                let order = try await Shop(url: global.url).object(.GET, "/orders/\(Query.segment(id))")
                if global.json { return Output.json(order) }
                Orders.describe(order)
            }
        }
    }

    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Cancel an order that has not shipped (a paid one is refunded).")
        @OptionGroup var global: Global
        @Argument(help: "The order's id.") var id: String
        @Option(help: "Why.") var reason = "cancelled by the customer"

        func run() async throws {
            try await perform {
                let order = try await Shop(url: global.url).object(.POST, "/orders/\(Query.segment(id))/cancel", ["reason": reason])
                if global.json { return Output.json(order) }
                Output.line("order \(order["order"] ?? id) \(Output.status(order["status"] ?? "?"))")
            }
        }
    }

    struct Watch: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Follow an order's status live until it is settled.")
        @OptionGroup var global: Global
        @Argument(help: "The order's id.") var id: String
        @Option(help: "Seconds to follow it at most.") var timeout = 300

        func validate() throws { guard (1...3600).contains(timeout) else { throw ValidationError("--timeout is 1 to 3600 seconds") } }

        func run() async throws {
            try await perform {
                let shop = try Shop(url: global.url)
                let order = try await shop.object(.GET, "/orders/\(Query.segment(id))")
                try Orders.report(try await Orders.follow(order, on: shop, for: timeout, global), global)
            }
        }
    }

    static let settled: Swift.Set = ["confirmed", "rejected", "cancelled", "shipped"]

    /// Follows the order until it settles or `seconds` pass, showing each step; the settled order.
    static func follow(_ order: JSONObject, on shop: Shop, for seconds: Int, _ global: Global) async throws -> JSONObject {
        guard let id = order["order"] else { throw Failure(.unexpected, "the shop answered an order without its id") }
        let deadline = ContinuousClock.now + .seconds(seconds)
        let progress = global.json ? nil : Progress()
        func stage(_ order: JSONObject) -> String {
            let status = order["status"] ?? "?"
            return "order \(id): \(status == "processing" ? "placed" : status)" + (order["step"].map { ", \($0)" } ?? "")
        }
        progress?.start(stage(order))
        defer { progress?.stop() }
        var current = order
        while !settled.contains(current["status"] ?? ""), ContinuousClock.now < deadline {
            // Answers when the order settles, or after a second with where it stands.
            current = try await shop.object(.GET, "/orders/\(Query.segment(id))?wait=1")
            if !settled.contains(current["status"] ?? "") { progress?.update(stage(current)) }
        }
        guard settled.contains(current["status"] ?? "") else {
            throw Failure(.processing, "order \(id) is still processing: shop orders watch \(id) follows it")
        }
        return current
    }

    /// The outcome: a rejected order is exit code 6, with its reason.
    static func report(_ order: JSONObject, _ global: Global) throws {
        let id = order["order"] ?? "?", status = order["status"] ?? "?"
        if global.json { Output.json(order) } else { describe(order) }
        if status == "rejected" { throw Failure(.rejected, "order \(id) rejected: \(order["reason"] ?? "no reason given")") }
    }

    static func describe(_ order: JSONObject) {
        Output.line("order \(Output.styled(order["order"] ?? "?", .bold)) \(Output.status(order["status"] ?? "?"))"
            + (order["reason"].map { ": \($0)" } ?? ""))
        let lines = order.objects("lines")
        if !lines.isEmpty {
            Output.table(["SKU", "NAME", "QTY", "UNIT"], lines.map {
                [$0["sku"] ?? "", $0["name"] ?? "", "\($0.int("quantity") ?? 0)", Output.money($0.object("unitPrice"))]
            }, right: [2, 3])
        }
        if let total = order.object("total") { Output.line(Output.styled("total \(Output.money(total))", .bold)) }
    }
}
