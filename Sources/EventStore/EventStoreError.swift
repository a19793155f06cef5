import PostgresNIO

/// An append's expected version did not match the stream: somebody else wrote to it since it was read.
public struct WrongExpectedVersion: Error, Hashable, CustomStringConvertible {
    public let stream: StreamName
    public let expected: ExpectedVersion
    /// The stream's version when the append was tried (0: no events).
    public let actual: Int64

    public init(stream: StreamName, expected: ExpectedVersion, actual: Int64) {
        self.stream = stream
        self.expected = expected
        self.actual = actual
    }

    public var description: String {
        "stream \(stream) is at version \(actual), not at the expected \(expected)"
    }
}

public enum EventStoreError: Error, Hashable, CustomStringConvertible {
    /// Some of the batch's event ids are already stored, but not as this same batch in this stream
    /// (a whole-batch repeat is an idempotent no-op instead). Nothing was written.
    case eventIDConflict(stream: StreamName)
    /// The append itself is malformed: no events, repeated ids within the batch, a bad stream name.
    case invalidAppend(String)
    /// The store did not answer as the schema says it must: migrations not applied, or a bug.
    case unexpectedResponse(String)

    public var description: String {
        switch self {
        case .eventIDConflict(let stream): "some event ids appended to \(stream) are already stored elsewhere"
        case .invalidAppend(let reason): "invalid append: \(reason)"
        case .unexpectedResponse(let reason): "unexpected answer from the event store: \(reason)"
        }
    }
}

extension PSQLError {
    /// The server's own words (PSQLError's description hides them, to keep data out of logs by default).
    public var serverMessage: String {
        if let message = serverInfo?[.message] {
            let state = serverInfo?[.sqlState].map { " [\($0)]" } ?? ""
            let detail = serverInfo?[.detail].map { ": \($0)" } ?? ""
            return message + detail + state
        }
        return "\(code)"
    }

    /// The SQLSTATE code, if the server sent one.
    public var sqlState: String? { serverInfo?[.sqlState] }
}

/// A readable message for any error, with PostgreSQL's own words when it came from the server.
public func describe(_ error: any Error) -> String {
    if let error = error as? PSQLError { return error.serverMessage }
    if let error = error as? PostgresTransactionError {
        return (error.closureError ?? error.commitError ?? error.beginError ?? error.rollbackError).map(describe) ?? "\(error)"
    }
    return "\(error)"
}
