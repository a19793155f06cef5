import EventStore
import Logging
import PostgresNIO

/// The orchestrator's lock connection: the session advisory locks that say which worker holds which instance.
extension FulfilmentOrchestrator {
    struct LockConnectionStalled: Error, CustomStringConvertible {
        var description: String { "a query on the lock connection did not answer in time; the connection was closed" }
    }

    /// Runs `body` on the lock connection, and gives up on it if it does not answer within `limit`, or when the
    /// orchestrator is stopped meanwhile: the connection is closed (which releases its locks) and the query is left
    /// behind. A connection the server terminated (PostgreSQL gone) can leave a query waiting for ever, which held
    /// the graceful shutdown; closing the connection does not always end that wait, so nothing waits for it.
    static func bounded<Result: Sendable>(
        _ connection: PostgresConnection, limit: Duration = .seconds(10), logger: Logger, _ body: @escaping @Sendable () async throws -> Result
    ) async throws -> Result {
        try await waitAtMost(limit, orThrow: {
            logger.warning("the saga orchestrator's lock connection does not answer; closing it")
            return LockConnectionStalled()
        }, giveUp: {
            Task { try? await connection.close() }
        }, body)
    }

    /// Advisory lock space of the saga instances (the event store uses 24158, idempotency keys 24159); taken by
    /// `claim_saga` (`Migrations/ordering/0004_lock_saga.sql`).
    static let lockSpace: Int32 = 24160

    static func unlock(_ id: String, on connection: PostgresConnection, logger: Logger) async throws {
        try await connection.run("SELECT pg_advisory_unlock(\(lockSpace), hashtext(\(id)))", logger: logger)
    }
}

