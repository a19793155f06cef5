import Crypto
import Essentials
import EventStore
import EventSourcing
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import PostgresNIO
import ServiceKit
import Synchronization

/// Runs commands exactly once per `Idempotency-Key`.
///
/// First planned (``EventStore/runPlanned(_:write:applied:)``): the command is decided on the states the service
/// keeps, and one statement (`run_planned_command`) locks the key, answers the stored reply if the key was used,
/// and otherwise makes the command's writes and stores its reply: one round trip, one commit. When that cannot
/// be (a stream moved on, the command refused or needs a transaction of its own), nothing was written, and it
/// runs in a transaction:
///
/// Lock the key and look it up (one round trip); if it was used, answer what was answered then (or 422 if the
/// request differs); else run the command, store its reply, commit. A command refused by a domain rule (a 4xx
/// ``ProblemConvertible``) is stored too, so a retry gets the same refusal: its transaction is rolled back
/// (whatever it wrote is undone) and the refusal stored in a second one. A savepoint would do it in one, but
/// cost every command a round trip for the sake of the few that are refused.
///
/// Two requests with one key at once (a client's retry overlapping its first attempt, or a saga step's) are taken
/// one after the other in this process (``exclusively(_:_:)``): the second waits for the first, at most
/// ``inFlightWait``, and is then answered as a retry; after that it gets a 409 with `Retry-After`, as the IETF
/// Idempotency-Key draft says, and never a refusal that only the first request's writes caused. Between processes,
/// the key's lock in the database orders them the same way.
public struct CommandRunner: Sendable {
    public let store: EventStore
    /// How long a request waits for another with its key to finish before it is answered 409.
    public let inFlightWait: Duration

    public init(store: EventStore, inFlightWait: Duration = .seconds(10)) {
        self.store = store
        self.inFlightWait = inFlightWait
    }

    /// Runs `body` (all the handling of a command request: checks, calls outside, ``run(_:body:_:)``) while no other
    /// request with the same idempotency key runs in this process; a request that finds one waits for it to end.
    ///
    /// For a handler that looks before it runs its command (``replay(_:body:)``, a check of the state, a call of the
    /// payment provider): without it, a request overlapping another with its key could look after the other's
    /// command committed but before its reply was found, and refuse what the other had just done.
    public func exclusively<Result: Sendable>(_ request: Request, _ body: () async throws -> Result) async throws -> Result {
        let key = try Self.key(of: request)
        let scoped = "\(store.configuration.database.host):\(store.configuration.database.port)/\(store.configuration.database.database) \(key)"
        if InFlightKeys.held == scoped { return try await body() }
        try await InFlightKeys.shared.enter(scoped, waitingAtMost: inFlightWait)
        defer { InFlightKeys.shared.leave(scoped) }
        return try await InFlightKeys.$held.withValue(scoped) { try await body() }
    }

    public func run(
        _ request: Request, body: Data?,
        _ command: @escaping @Sendable (EventStore.Transaction) async throws -> CommandReply
    ) async throws -> Response {
        try await exclusively(request) { try await runAlone(request, body: body, command) }
    }

    private func runAlone(
        _ request: Request, body: Data?,
        _ command: @escaping @Sendable (EventStore.Transaction) async throws -> CommandReply
    ) async throws -> Response {
        let (key, fingerprint) = try Self.identify(request, body: body)
        if let planned = try await store.runPlanned(command, write: { reply, writes in
            try RunPlannedCommand(key: key, fingerprint: fingerprint, reply: reply, writes: writes)
        }, applied: { $0.first?.replayed == false }), let row = planned.rows.first {
            return try Self.reply(storedFingerprint: row.fingerprint, storedReply: row.reply, fingerprint).response(replayed: row.replayed)
        }
        let refusal: Problem
        do {
            let (reply, replayed) = try await store.withTransaction { transaction -> (CommandReply, Bool) in
                if let stored = try await Self.lock(key, fingerprint, in: transaction) { return (stored, true) }
                let reply: CommandReply
                do {
                    reply = try await command(transaction)
                } catch let refused as any ProblemConvertible where (400..<500).contains(refused.problem.status.code) {
                    throw Refused(problem: refused.problem)
                }
                try await Self.store(reply, key, fingerprint, in: transaction)
                return (reply, false)
            }
            return reply.response(replayed: replayed)
        } catch let refused as Refused {
            refusal = refused.problem
        }
        // Another request with this key may have been answered meanwhile: then its answer is the key's.
        let (reply, replayed) = try await store.withTransaction { transaction -> (CommandReply, Bool) in
            if let stored = try await Self.lock(key, fingerprint, in: transaction) { return (stored, true) }
            let reply = CommandReply(status: refusal.status, body: refusal.body)
            try await Self.store(reply, key, fingerprint, in: transaction)
            return (reply, false)
        }
        return reply.response(replayed: replayed)
    }

    /// A command's refusal, out of the transaction it rolls back.
    private struct Refused: Error {
        let problem: Problem
    }

    /// Takes the key's lock until the transaction ends, and answers the reply stored with it, if any.
    static func lock(_ key: String, _ fingerprint: String, in transaction: EventStore.Transaction) async throws -> CommandReply? {
        let rows = try await transaction.connection.query("SELECT fingerprint, reply FROM lock_idempotency_key(\(key))", logger: transaction.logger)
        return try await reply(rows, fingerprint)
    }

    static func store(_ reply: CommandReply, _ key: String, _ fingerprint: String, in transaction: EventStore.Transaction) async throws {
        let encoded = String(decoding: try JSONEncoder.sortedKeys.encode(reply), as: UTF8.self)
        try await transaction.connection.run(
            "INSERT INTO idempotency_keys (key, fingerprint, reply) VALUES (\(key), \(fingerprint), \(encoded)::jsonb)",
            logger: transaction.logger)
    }

    /// The stored reply to this request, if its key was used before: for a command that must call
    /// something outside (a payment provider) before it runs, and must not do so for a retry.
    public func replay(_ request: Request, body: Data?) async throws -> Response? {
        let (key, fingerprint) = try Self.identify(request, body: body)
        let stored = try await store.withConnection { connection in
            try await Self.stored(key, fingerprint, on: connection, logger: store.logger)
        }
        return stored?.response(replayed: true)
    }

    /// The request's idempotency key, checked, and scoped to the calling process (``Caller``): one caller's key
    /// never meets another's, so no caller can replay, or block with a 422, what another asked.
    static func key(of request: Request) throws -> String {
        guard let key = request.headers[.idempotencyKey] else {
            throw Problem.badRequest("missing-idempotency-key", "commands need an Idempotency-Key header (a unique string per intended action)")
        }
        guard (1...200).contains(key.utf8.count), key.unicodeScalars.allSatisfy({ $0.isASCII && $0.value >= 0x20 && $0.value < 0x7F }) else {
            throw Problem.badRequest("malformed-idempotency-key", "an Idempotency-Key is 1 to 200 printable ASCII characters")
        }
        return Caller.current.map { "\($0):\(key)" } ?? key
    }

    /// The request's key, and a fingerprint of what it asks (method, path, If-Match, body).
    static func identify(_ request: Request, body: Data?) throws -> (key: String, fingerprint: String) {
        let key = try key(of: request)
        var hasher = SHA256()
        hasher.update(data: Data("\(request.method) \(request.uri.path)\n\(request.headers[.ifMatch] ?? "")\n".utf8))
        if let body { hasher.update(data: body) }
        let hex = Array("0123456789abcdef".utf8)
        return (key, String(decoding: hasher.finalize().flatMap { [hex[Int($0 >> 4)], hex[Int($0 & 0x0F)]] }, as: UTF8.self))
    }

    /// The reply stored for `key`; a 422 if the key was used for another request.
    static func stored(_ key: String, _ fingerprint: String, on connection: PostgresConnection, logger: Logger) async throws -> CommandReply? {
        try await reply(try await connection.query("SELECT fingerprint, reply::text FROM idempotency_keys WHERE key = \(key)", logger: logger),
                        fingerprint)
    }

    /// The reply in `rows` (a stored fingerprint and reply), if any.
    private static func reply(_ rows: PostgresRowSequence, _ fingerprint: String) async throws -> CommandReply? {
        for try await (storedFingerprint, storedReply) in rows.decode((String, String).self) {
            return try reply(storedFingerprint: storedFingerprint, storedReply: storedReply, fingerprint)
        }
        return nil
    }

    /// A stored reply, if it was stored for this request (`fingerprint`); a 422 if the key was used for another.
    private static func reply(storedFingerprint: String, storedReply: String, _ fingerprint: String) throws -> CommandReply {
        guard storedFingerprint == fingerprint else {
            throw Problem.ruleBroken("idempotency-key-reused",
                                     "this Idempotency-Key was used for a different request; use a new key for a new action")
        }
        return try JSONDecoder().decode(CommandReply.self, from: Data(storedReply.utf8))
    }
}

/// A command planned on kept states, with its idempotency key and reply, in one statement: `run_planned_command`
/// (`Migrations/eventstore/0004_planned_writes.sql`). The reply answered is the stored one: the key's earlier
/// reply (`replayed`), or this one with the positions of its appends written in.
struct RunPlannedCommand: PostgresPreparedStatement {
    static let sql = "SELECT fingerprint, reply, replayed FROM run_planned_command($1, $2, $3, $4, \(PlannedWrites.parameters(from: 5)))"
    typealias Row = (fingerprint: String, reply: String, replayed: Bool)

    let key: String, fingerprint: String, reply: String, writes: PlannedWrites

    init(key: String, fingerprint: String, reply: CommandReply, writes: PlannedWrites) throws {
        self.key = key
        self.fingerprint = fingerprint
        self.reply = String(decoding: try JSONEncoder.sortedKeys.encode(reply), as: UTF8.self)
        self.writes = writes
    }

    func makeBindings() throws -> PostgresBindings {
        var bindings = PostgresBindings(capacity: 17)
        bindings.append(key)
        bindings.append(fingerprint)
        bindings.append(reply)
        bindings.append(writes.placeholders.map(\.description))
        writes.bind(into: &bindings)
        return bindings
    }

    func decodeRow(_ row: PostgresRow) throws -> Row { try row.decode((String, String, Bool).self) }
}

/// The idempotency keys of the requests this process is handling, each with the requests waiting for it.
final class InFlightKeys: Sendable {
    static let shared = InFlightKeys()
    /// The key this task holds (so that a handler holding it can run a command under the same key).
    @TaskLocal static var held: String?

    private let turns = Turns<String>()

    /// Takes `key`, waiting while another request holds it, at most `limit`: then a 409 with `Retry-After`.
    func enter(_ key: String, waitingAtMost limit: Duration) async throws {
        guard await turns.enter(key, waitingAtMost: limit) else {
            throw Problem(.conflict, rule: "request-in-progress", title: "A request with this Idempotency-Key is in progress",
                          detail: "another request with this key is still being processed; retry with the same key to get its reply",
                          headers: [.retryAfter: "1"])
        }
    }

    func leave(_ key: String) { turns.leave(key) }
}

/// What a command that wrote one stream answers: the stream, its version (the reply's ETag too) and where the write
/// stands in the store's commit order (`nil` when the command changed nothing), for a read that must see it.
public struct Written: Codable, Sendable {
    public let stream: String
    public let streamVersion: Int64
    public let position: String?
}

extension CommandReply {
    public static func written<D>(
        _ result: CommandHandler<D>.Result, to stream: StreamName, status: HTTPResponse.Status = .ok, location: String? = nil
    ) throws -> CommandReply {
        try .json(status, Written(stream: stream.rawValue, streamVersion: result.streamVersion, position: result.position?.description),
                  etag: ETag.make(result.streamVersion), location: location)
    }
}
