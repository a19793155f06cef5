import Logging
import PostgresNIO

extension PostgresConnection {
    /// Runs a statement for its effect and waits for its whole result.
    ///
    /// `query` returns as soon as a statement's rows start to arrive, and an error raised while it executes
    /// comes with the rows: a `SELECT f()` whose rows are never read loses its error. This reads them.
    public func run(_ query: PostgresQuery, logger: Logger) async throws {
        for try await _ in try await self.query(query, logger: logger) {}
    }
}

extension PostgresClient {
    /// See ``PostgresNIO/PostgresConnection/run(_:logger:)``.
    public func run(_ query: PostgresQuery, logger: Logger) async throws {
        for try await _ in try await self.query(query, logger: logger) {}
    }
}
