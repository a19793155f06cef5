import Foundation
import Logging
import PostgresNIO

/// How a ``CommandHandler`` keeps snapshots of its streams' states: a long stream (a product's stock grows with every
/// order) is then loaded from its latest snapshot and the events after it, at most about `every` of them, whatever the
/// stream's length. A snapshot is taken after a commit that moves a stream past a multiple of `every`, and after a load
/// that folded `every` events or more; taking it never delays the command (it is written after the commit, and a
/// snapshot that could not be written is only a longer load next time).
///
/// `schema` is part of the decider's contract: change it whenever `evolve` or the state's encoding changes, and the
/// old snapshots are ignored (each stream is folded from its first event once, and snapshotted again).
public struct Snapshotting<State: Sendable>: Sendable {
    public let schema: String
    public let every: Int64
    let encode: @Sendable (State) throws -> Data
    let decode: @Sendable (Data) throws -> State

    public init(schema: String, every: Int64, encode: @escaping @Sendable (State) throws -> Data, decode: @escaping @Sendable (Data) throws -> State) {
        precondition(every >= 1, "a snapshot every \(every) events")
        self.schema = schema
        self.every = every
        self.encode = encode
        self.decode = decode
    }
}

extension Snapshotting where State: Codable {
    /// Snapshots as the state's JSON encoding.
    public init(schema: String, every: Int64 = 1_000) {
        self.init(schema: schema, every: every, encode: { try JSONEncoder().encode($0) }, decode: { try JSONDecoder().decode(State.self, from: $0) })
    }
}

extension EventStore {
    /// The latest snapshot of `stream` taken with `schema`: its version and the state's encoding.
    public func snapshot(of stream: StreamName, schema: String) async throws -> (version: Int64, state: Data)? {
        try await pooled("a snapshot") { client in
            let rows = try await client.query(
                "SELECT stream_version, state::text FROM snapshots WHERE stream_id = \(stream.rawValue) AND schema = \(schema)",
                logger: self.logger)
            for try await (version, state) in rows.decode((Int64, String).self) { return (version, Data(state.utf8)) }
            return nil
        }
    }

    /// Keeps `state` as the snapshot of `stream` at `version` with `schema`, unless a later one of that schema is kept.
    public func saveSnapshot(_ state: Data, of stream: StreamName, version: Int64, schema: String) async throws {
        try await pooled("a snapshot's write") { client in
            try await client.run("""
                INSERT INTO snapshots (stream_id, stream_version, schema, state) VALUES (\(stream.rawValue), \(version), \(schema), \(String(decoding: state, as: UTF8.self))::jsonb)
                ON CONFLICT (stream_id) DO UPDATE SET stream_version = EXCLUDED.stream_version, schema = EXCLUDED.schema, state = EXCLUDED.state, taken_at = now()
                WHERE snapshots.schema <> EXCLUDED.schema OR snapshots.stream_version < EXCLUDED.stream_version
                """, logger: self.logger)
        }
    }
}
