import Foundation
import Logging
import PostgresNIO
import Tracing

extension EventStore {
    /// Appends `events` to `stream`, atomically and in one round trip.
    ///
    /// - Throws: ``WrongExpectedVersion`` (nothing written) when the stream is not at `expectedVersion`;
    ///   ``EventStoreError/eventIDConflict(stream:)`` when some ids are already stored otherwise than as
    ///   this same batch.
    ///
    /// Appending a batch whose ids are all already stored, in this stream and in this order, is an idempotent
    /// no-op: it writes nothing, ignores `expectedVersion`, and answers what the first append answered (with
    /// ``AppendResult/wasDuplicate`` set), so a writer that lost the answer to an append can simply retry it.
    @discardableResult
    public func append(_ events: [NewEvent], to stream: StreamName, expectedVersion: ExpectedVersion) async throws -> AppendResult {
        try await withSpan("append \(stream.category)") { span in
            span.attributes["shop.events"] = events.count
            let statement = try AppendEvents(events, to: stream, expectedVersion: expectedVersion)
            let result = try await Self.runAppend(stream: stream, expectedVersion: expectedVersion) {
                try await pooled("an append") { client in try await Self.all(client.execute(statement, logger: self.logger)) }
            }
            if !result.wasDuplicate { appended(to: [stream]) }
            return result
        }
    }

    /// Runs `body` in one database transaction: its appends commit together with whatever else it writes
    /// through ``Transaction/connection`` (an idempotency record, an outbox row), or not at all.
    ///
    /// Appends in one transaction take their streams' locks in the order they are made: two transactions
    /// that append to the same streams in opposite orders can deadlock (PostgreSQL then aborts one).
    ///
    /// The transaction as a whole has the store's `queryDeadline`: past it, the caller gets ``DatabaseUnavailable``
    /// (the transaction may still commit or roll back on its own).
    public func withTransaction<Result: Sendable>(_ body: @escaping @Sendable (Transaction) async throws -> Result) async throws -> Result {
        // On the connection's event loop: no thread hop between one round trip and the next.
        let logger = logger
        let unknown = UnknownOutcome()
        let result: (Result, Set<StreamName>)
        do {
            result = try await pooled("a transaction") { client in try await client.withConnection { connection in
            try await withTaskExecutorPreference(EventLoopExecutor(connection.eventLoop)) {
                try await connection.run("BEGIN", logger: logger)
                let transaction = LiveTransaction(connection: connection, logger: logger, effects: TransactionEffects(ifOutcomeUnknown: unknown))
                do {
                    let result = try await body(transaction)
                    try await connection.run("COMMIT", logger: logger)
                    transaction.effects.committed()
                    return (result, transaction.effects.appendedStreams)
                } catch {
                    do {
                        try await connection.run("ROLLBACK", logger: logger)
                    } catch let rollbackError {
                        logger.warning("ROLLBACK failed", metadata: ["error": "\(describe(rollbackError))"])
                    }
                    throw error
                }
            }
            } }
        } catch where EventStore.isUnknownOutcome(error) {
            unknown.run()
            throw error
        }
        if !result.1.isEmpty { appended(to: result.1) }
        return result.0
    }


    static func runAppend(
        stream: StreamName, expectedVersion: ExpectedVersion, execute: () async throws -> [AppendEvents.Row]
    ) async throws -> AppendResult {
        let outcome: AppendEvents.Row?
        do {
            outcome = try await execute().last
        } catch let error as PSQLError where error.sqlState == "SE001" {
            throw EventStoreError.eventIDConflict(stream: stream)
        }
        switch outcome {
        case let (kind, version, transaction?, first?, last?)? where kind == "appended" || kind == "duplicate":
            return AppendResult(
                streamVersion: version,
                firstPosition: Position(transactionID: transaction, globalPosition: first),
                lastPosition: Position(transactionID: transaction, globalPosition: last),
                wasDuplicate: kind == "duplicate")
        case let ("wrong_version", actual, _, _, _)?:
            throw WrongExpectedVersion(stream: stream, expected: expectedVersion, actual: actual)
        case ("id_conflict", _, _, _, _)?:
            throw EventStoreError.eventIDConflict(stream: stream)
        default:
            throw EventStoreError.unexpectedResponse("append_events answered \(outcome.map { "\($0)" } ?? "nothing")")
        }
    }

}
