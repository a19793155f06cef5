import ArgumentParser
import AsyncHTTPClient
import Foundation

@main
struct ShopCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "shop",
        abstract: "Shop from the terminal, through the shop's CLI API.",
        discussion: """
            Where the shop is: --url, else $SHOP_URL, else the URL saved by 'shop login', else http://127.0.0.1:8080. \
            The token: $SHOP_TOKEN, else the one 'shop login' saved in $XDG_CONFIG_HOME/shop/config.json (mode 0600).

            Exit codes: 0 done; 1 unexpected failure; 3 not signed in (no token, expired, refused, or the wrong role); \
            4 not found (an unknown SKU or order); 5 refused by a rule (an empty cart, a bad quantity or card number, \
            an order that can no longer be cancelled); 6 the order was rejected (a declined card, no stock); \
            7 rate limited; 8 the shop cannot be reached or a service is unavailable; 9 the order is still processing \
            (follow it with 'shop orders watch ID'); 64 a usage mistake.
            """,
        subcommands: [Login.self, Logout.self, WhoAmI.self, Products.self, Cart.self, Checkout.self, Orders.self]
    )
}

/// Options every command takes.
struct Global: ParsableArguments {
    @Option(help: "The shop's URL (default: $SHOP_URL, else the saved one, else http://127.0.0.1:8080).") var url: String?
    @Flag(help: "Print the answer as JSON, for scripts.") var json = false
}

/// Runs a command's work: a failure is one line on stderr and its exit code.
func perform(_ work: () async throws -> Void) async throws {
    do {
        try await work()
    } catch let failure as Failure {
        Output.error(failure.message)
        throw ExitCode(failure.kind.rawValue)
    }
}

// MARK: Signing in

struct Login: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Sign in: as NAME through the shop's development login, or with a token (--token).",
        discussion: "The token (and --url, if given) is saved for the next commands.")

    @OptionGroup var global: Global
    @Argument(help: "Who to sign in as (development login).") var name: String?
    @Flag(help: "Sign in as an admin (development login).") var admin = false
    @Option(help: "A bearer token to use instead (shop-admin tokens issue prints one).") var token: String?

    func validate() throws {
        guard (name == nil) != (token == nil) else { throw ValidationError("give a NAME to sign in as, or --token TOKEN") }
        if token != nil, admin { throw ValidationError("--admin is for the development login; a token carries its own role") }
    }

    func run() async throws {
        try await perform {
            var shop = try Shop(url: global.url, requiresToken: false)
            let signedIn: JSONObject
            if let name {
                signedIn = try await shop.object(.POST, "/login", [admin ? "admin" : "customer": name], authorised: false)
                shop = Shop(base: shop.base, token: signedIn["token"])
            } else {
                shop = Shop(base: shop.base, token: token)
                signedIn = try await shop.object(.GET, "/me")
            }
            var settings = try Settings.load()
            settings.token = shop.token
            if global.url != nil { settings.url = shop.base }
            try settings.save()
            if global.json { return Output.json(signedIn) }
            Output.line("signed in as \(Output.styled(signedIn["subject"] ?? "?", .bold)) (\(signedIn["role"] ?? "?")) at \(shop.base)")
        }
    }
}

extension Shop {
    init(base: String, token: String?) {
        self.base = base
        self.token = token
    }
}

struct Logout: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Forget the saved token.")
    @OptionGroup var global: Global

    func run() async throws {
        try await perform {
            var settings = try Settings.load()
            let had = settings.token != nil
            settings.token = nil
            try settings.save()
            if global.json { return Output.json(JSONObject(value: ["signedOut": had])) }
            Output.line(had ? "signed out" : "not signed in")
        }
    }
}

struct WhoAmI: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "whoami", abstract: "Who the token speaks for, and until when.")
    @OptionGroup var global: Global

    func run() async throws {
        try await perform {
            let me = try await Shop(url: global.url).object(.GET, "/me")
            if global.json { return Output.json(me) }
            Output.line("\(Output.styled(me["subject"] ?? "?", .bold)) (\(me["role"] ?? "?")), signed in until \(me["expiresAt"] ?? "?")")
        }
    }
}

// MARK: Products

struct Products: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The catalog.", subcommands: [List.self, Search.self, Show.self])

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Products for sale, 50 a page.")
        @OptionGroup var global: Global
        @Option(help: "Start after this SKU (the 'next' of the page before).") var after: String?

        func run() async throws {
            try await perform {
                let path = "/products" + (after.map { "?after=\(Query.encode($0))" } ?? "")
                try Products.show(try await Shop(url: global.url, requiresToken: false).object(.GET, path), global)
            }
        }
    }

    struct Search: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Products whose name or description has these words.")
        @OptionGroup var global: Global
        @Argument(help: "Words to search for.") var text: [String]

        func validate() throws {
            if text.joined().trimmingCharacters(in: .whitespaces).isEmpty { throw ValidationError("give words to search for") }
        }

        func run() async throws {
            try await perform {
                let path = "/products?q=\(Query.encode(text.joined(separator: " ")))"
                try Products.show(try await Shop(url: global.url, requiresToken: false).object(.GET, path), global)
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One product.")
        @OptionGroup var global: Global
        @Argument(help: "Its SKU.") var sku: String

        func run() async throws {
            try await perform {
                let product = try await Shop(url: global.url, requiresToken: false).object(.GET, "/products/\(Query.segment(sku))")
                if global.json { return Output.json(product) }
                Output.line(Output.styled("\(product["sku"] ?? sku)  \(product["name"] ?? "")", .bold))
                if let description = product["description"], !description.isEmpty { Output.line(description) }
                Output.line("price      \(Output.money(product.object("price")))")
                Output.line("available  \(product.int("available") ?? 0)\(product.value["discontinued"] as? Bool == true ? "  (discontinued)" : "")")
            }
        }
    }

    static func show(_ page: JSONObject, _ global: Global) throws {
        if global.json { return Output.json(page) }
        let products = page.objects("products")
        guard !products.isEmpty else { return Output.line("no products") }
        Output.table(["SKU", "NAME", "PRICE", "AVAILABLE"],
                     products.map { [$0["sku"] ?? "", $0["name"] ?? "", Output.money($0.object("price")), "\($0.int("available") ?? 0)"] },
                     right: [2, 3])
        if let next = page["next"] { Output.line(Output.styled("more: shop products list --after \(next)", .dim)) }
    }
}

// MARK: The cart

struct Cart: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Your cart.", subcommands: [Show.self, Add.self, Set.self, Remove.self, Clear.self], defaultSubcommand: Show.self)

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "What the cart holds.")
        @OptionGroup var global: Global
        func run() async throws { try await perform { Cart.show(try await Shop(url: global.url).object(.GET, "/cart"), global) } }
    }

    struct Add: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Put a product in the cart.")
        @OptionGroup var global: Global
        @Argument(help: "Its SKU.") var sku: String
        @Argument(help: "How many (1 to 99).") var quantity = 1
        func validate() throws { guard (1...99).contains(quantity) else { throw ValidationError("the quantity is 1 to 99") } }
        func run() async throws {
            try await perform {
                Cart.show(try await Shop(url: global.url).object(.POST, "/cart/items", ["sku": sku, "quantity": quantity]), global)
            }
        }
    }

    struct Set: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Set how many of a product the cart holds (0 takes it out).")
        @OptionGroup var global: Global
        @Argument(help: "Its SKU.") var sku: String
        @Argument(help: "How many (0 to 99).") var quantity: Int
        func validate() throws { guard (0...99).contains(quantity) else { throw ValidationError("the quantity is 0 to 99") } }
        func run() async throws {
            try await perform {
                Cart.show(try await Shop(url: global.url).object(.PUT, "/cart/items/\(Query.segment(sku))", ["quantity": quantity]), global)
            }
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Take a product out of the cart.")
        @OptionGroup var global: Global
        @Argument(help: "Its SKU.") var sku: String
        func run() async throws {
            try await perform { Cart.show(try await Shop(url: global.url).object(.DELETE, "/cart/items/\(Query.segment(sku))"), global) }
        }
    }

    struct Clear: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Empty the cart.")
        @OptionGroup var global: Global
        func run() async throws { try await perform { Cart.show(try await Shop(url: global.url).object(.DELETE, "/cart"), global) } }
    }

    static func show(_ cart: JSONObject, _ global: Global) {
        if global.json { return Output.json(cart) }
        let items = cart.objects("items")
        guard !items.isEmpty else { return Output.line("the cart is empty") }
        Output.table(["SKU", "NAME", "QTY", "UNIT", "SUBTOTAL"], items.map { item in
            let quantity = item.int("quantity") ?? 0
            let unit = item.object("unitPrice")
            let subtotal = unit.flatMap { price in (price.value["amount"] as? Int).map { JSONObject(value: ["amount": $0 * quantity, "currency": price["currency"] ?? ""]) } }
            return [item["sku"] ?? "", item["name"] ?? "", "\(quantity)", Output.money(unit), Output.money(subtotal)]
        }, right: [2, 3, 4])
        Output.line(Output.styled("total \(Output.money(cart.object("total")))", .bold))
    }
}

enum Query {
    static func encode(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(.init(charactersIn: "-._~"))) ?? text
    }
    static func segment(_ text: String) -> String { encode(text) }
}
