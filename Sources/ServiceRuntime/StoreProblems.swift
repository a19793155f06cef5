import EventStore
import PostgresNIO
import ServiceKit

// How the event store's errors reach the edge.

/// The event store's own refusals, should one reach the edge: a malformed append is the client's (an id no
/// stream can have), a clash of event ids a conflict; a store that answers unexpectedly is a bug.
extension EventStoreError: ProblemConvertible {
    public var problem: Problem {
        switch self {
        case .invalidAppend(let reason): .ruleBroken("invalid-identifier", reason)
        case .eventIDConflict: Problem(.conflict, rule: "event-id-conflict", title: "Somebody else wrote first", detail: description)
        case .unexpectedResponse: .internalError
        }
    }
}

/// Runs a command that carries an `If-Match` version: a mismatch is a 412, not a 409.
public func ifMatch<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let mismatch as WrongExpectedVersion {
        throw Problem.preconditionFailed(mismatch.description, actualVersion: mismatch.actual)
    }
}

/// Another writer got there first: a 409 with the stream's version.
extension WrongExpectedVersion: ProblemConvertible {
    public var problem: Problem { .conflict(description, actualVersion: actual) }
}

extension DatabaseUnavailable: ProblemConvertible {
    public var problem: Problem { .databaseUnavailable }
}

/// PostgreSQL gone is a 503 the client may retry; any other error of the database is a bug (a 500), logged in the
/// server's own words.
extension PSQLError: ProblemConvertible {
    public var problem: Problem {
        isUnavailability ? .databaseUnavailable : .internalError
    }

    public var logDescription: String { serverMessage }
}
