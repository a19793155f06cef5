import Foundation
import GRDB
import Synchronization

/// A payment provider with deterministic behaviour by test card number, like the test cards real providers
/// publish, that keeps what it did in a SQLite file of its own: it runs as a process of its own
/// (`shop-server payment-provider`), and a restart of it or of Billing forgets nothing.
///
/// | card number | behaviour |
/// | --- | --- |
/// | 4242 4242 4242 4242 | approved |
/// | 4000 0000 0000 0002 | declined: card declined |
/// | 4000 0000 0000 9995 | declined: insufficient funds |
/// | 4000 0000 0000 0101 | answers only after ``slowDelay`` (longer than any caller's deadline) |
/// | 4000 0000 0000 0119 | fails: provider error (retryable) |
/// | any other number | declined: unknown test card |
///
/// As a real provider: every call carries an idempotency key, and a repeated key is answered with the first
/// answer (across restarts), never acting twice; a key used for another request is refused; authorisation ids
/// are random, never reused.
public final class PaymentProviderSimulator: Sendable {
    public static let approve = "4242424242424242"
    public static let decline = "4000000000000002"
    public static let insufficientFunds = "4000000000009995"
    public static let slow = "4000000000000101"
    public static let providerError = "4000000000000119"

    /// What a caller can ask of the provider; each can be made to fail for a while (``setOutage(_:)``).
    public enum Call: String, Sendable, CaseIterable, Codable { case authorise, capture, void, refund }

    public enum Answer: Sendable, Hashable, Codable {
        case approved(id: String)
        case declined(reason: String)
    }

    public enum Failure: Error, Hashable, CustomStringConvertible {
        /// Worth retrying, with the same key.
        case unavailable(String)
        case unknownAuthorisation(String)
        /// The key was used for another request.
        case keyReused
        case invalid(String)

        public var description: String {
            switch self {
            case .unavailable(let reason): "the payment provider is unavailable: \(reason)"
            case .unknownAuthorisation(let id): "the payment provider knows no authorisation \(id.prefix(60))"
            case .keyReused: "this idempotency key was used for another request"
            case .invalid(let reason): reason
            }
        }
    }

    /// What the provider did, per order: authorisations granted, captures, voids and refunds (a repeated
    /// idempotency key is not counted again).
    public struct Ledger: Sendable, Equatable, Codable {
        public var authorisations: [String: Int] = [:]
        public var captures: [String: Int] = [:]
        public var voids: [String: Int] = [:]
        public var refunds: [String: Int] = [:]
    }

    public let slowDelay: Duration
    private let database: DatabasePool

    /// Opens (or creates) the provider's file.
    public init(file: URL, slowDelay: Duration = .seconds(30)) throws {
        try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        // WAL (a pool), each commit flushed: durable as the provider promises, at one flush a commit.
        configuration.prepareDatabase { try $0.execute(sql: "PRAGMA synchronous = FULL") }
        database = try DatabasePool(path: file.path, configuration: configuration)
        try database.write { db in
            try db.execute(sql: """
                CREATE TABLE IF NOT EXISTS requests (
                    key TEXT PRIMARY KEY, fingerprint TEXT NOT NULL, answer TEXT NOT NULL);
                CREATE TABLE IF NOT EXISTS authorisations (
                    id TEXT PRIMARY KEY, order_id TEXT NOT NULL, amount INTEGER NOT NULL, currency TEXT NOT NULL);
                CREATE TABLE IF NOT EXISTS operations (
                    key TEXT PRIMARY KEY, authorisation TEXT NOT NULL REFERENCES authorisations (id),
                    call TEXT NOT NULL, amount INTEGER);
                CREATE TABLE IF NOT EXISTS outage (call TEXT PRIMARY KEY);
                """)
        }
        self.slowDelay = slowDelay
    }

    // MARK: Calls

    public func authorise(order: String, amount: Int64, currency: String, card: String, key: String) async throws(Failure) -> Answer {
        try await checkAvailable(.authorise)
        let card = card.filter { $0 != " " }
        let fingerprint = "authorise \(order) \(amount) \(currency) \(card)"
        if let answer = try await stored(key, fingerprint) { return answer }
        switch card {
        case Self.providerError:
            throw .unavailable("simulated provider error")
        case Self.slow:
            do { try await Task.sleep(for: slowDelay) } catch { throw .unavailable("cancelled") }
        default:
            break
        }
        return try await write { db in
            // Another request with this key may have been answered meanwhile: its answer is the key's.
            if let answer = try Self.stored(key, fingerprint, db) { return answer }
            let answer: Answer
            switch card {
            case Self.approve, Self.slow:
                answer = .approved(id: "auth_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased())
            case Self.decline: answer = .declined(reason: "card declined")
            case Self.insufficientFunds: answer = .declined(reason: "insufficient funds")
            default: answer = .declined(reason: "unknown test card")
            }
            if case .approved(let id) = answer {
                try db.execute(sql: "INSERT INTO authorisations (id, order_id, amount, currency) VALUES (?, ?, ?, ?)",
                               arguments: [id, order, amount, currency])
            }
            try db.execute(sql: "INSERT INTO requests (key, fingerprint, answer) VALUES (?, ?, ?)",
                           arguments: [key, fingerprint, String(decoding: try JSONEncoder().encode(answer), as: UTF8.self)])
            return answer
        }
    }

    public func capture(authorisation: String, amount: Int64, key: String) async throws(Failure) {
        try await operate(.capture, authorisation, amount: amount, key: key)
    }

    public func void(authorisation: String, key: String) async throws(Failure) {
        try await operate(.void, authorisation, amount: nil, key: key)
    }

    public func refund(authorisation: String, amount: Int64, key: String) async throws(Failure) {
        try await operate(.refund, authorisation, amount: amount, key: key)
    }

    /// Records a capture, void or refund of a known authorisation, once per key.
    private func operate(_ call: Call, _ authorisation: String, amount: Int64?, key: String) async throws(Failure) {
        try await checkAvailable(call)
        try await write { db in
            let known = try Bool.fetchOne(db, sql: "SELECT EXISTS (SELECT 1 FROM authorisations WHERE id = ?)", arguments: [authorisation]) ?? false
            guard known else { throw Failure.unknownAuthorisation(authorisation) }
            let done = try Row.fetchOne(db, sql: "SELECT authorisation, call, amount FROM operations WHERE key = ?", arguments: [key])
            if let done {
                guard done["authorisation"] == authorisation, done["call"] == call.rawValue, done["amount"] as Int64? == amount else {
                    throw Failure.keyReused
                }
                return
            }
            try db.execute(sql: "INSERT INTO operations (key, authorisation, call, amount) VALUES (?, ?, ?, ?)",
                           arguments: [key, authorisation, call.rawValue, amount])
        }
    }

    // MARK: The simulator's controls

    public func ledger() async throws -> Ledger {
        try await database.read { db in
                var ledger = Ledger()
                for row in try Row.fetchAll(db, sql: "SELECT order_id, count(*) AS n FROM authorisations GROUP BY order_id") {
                    ledger.authorisations[row["order_id"]] = row["n"]
                }
                for row in try Row.fetchAll(db, sql: """
                    SELECT o.call, a.order_id, count(*) AS n FROM operations o JOIN authorisations a ON a.id = o.authorisation
                    GROUP BY o.call, a.order_id
                    """) {
                    let (order, count): (String, Int) = (row["order_id"], row["n"])
                    switch Call(rawValue: row["call"]) {
                    case .capture: ledger.captures[order] = count
                    case .void: ledger.voids[order] = count
                    case .refund: ledger.refunds[order] = count
                    case .authorise, nil: break
                    }
                }
                return ledger
        }
    }

    /// Makes these calls fail as an unavailable provider's do (retryable), until called again without them:
    /// for showing and testing what the saga does when its payment provider is down. Kept across restarts.
    public func setOutage(_ calls: Set<Call>) async throws {
        try await database.write { db in
            try db.execute(sql: "DELETE FROM outage")
            for call in calls { try db.execute(sql: "INSERT INTO outage (call) VALUES (?)", arguments: [call.rawValue]) }
        }
    }

    public func outage() async throws -> Set<Call> {
        Set(try await database.read { try String.fetchAll($0, sql: "SELECT call FROM outage") }.compactMap(Call.init(rawValue:)))
    }

    // MARK: Storage

    private func checkAvailable(_ call: Call) async throws(Failure) {
        let down: Bool
        do { down = try await outage().contains(call) } catch { throw .unavailable("its storage failed: \(error)") }
        if down { throw .unavailable("simulated outage of \(call.rawValue)") }
    }

    private func stored(_ key: String, _ fingerprint: String) async throws(Failure) -> Answer? {
        do {
            return try await database.read { try Self.stored(key, fingerprint, $0) }
        } catch let failure as Failure {
            throw failure
        } catch {
            throw .unavailable("its storage failed: \(error)")
        }
    }

    private static func stored(_ key: String, _ fingerprint: String, _ db: Database) throws -> Answer? {
        guard let row = try Row.fetchOne(db, sql: "SELECT fingerprint, answer FROM requests WHERE key = ?", arguments: [key]) else { return nil }
        guard row["fingerprint"] == fingerprint else { throw Failure.keyReused }
        return try JSONDecoder().decode(Answer.self, from: Data((row["answer"] as String).utf8))
    }

    /// A write transaction; what it throws as a ``Failure`` comes out as it is, anything else as unavailable.
    private func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws(Failure) -> T {
        do {
            return try await database.write(body)
        } catch let failure as Failure {
            throw failure
        } catch {
            throw .unavailable("its storage failed: \(error)")
        }
    }
}
