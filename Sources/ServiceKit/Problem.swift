import Foundation
import Hummingbird

/// An RFC 9457 problem document: what went wrong with a request, as `application/problem+json`.
///
/// Every refusal a service gives is one of these: a malformed body is a 400, a broken domain rule a 422 naming
/// the rule, an unknown entity a 404, a concurrent write a 409 or 412. A 500 only ever means a bug.
public struct Problem: Error, HTTPResponseError, Sendable, Equatable {
    public var status: HTTPResponse.Status
    /// A stable, machine-readable name: `invalid-quantity`, `insufficient-stock`, `malformed-json`.
    public var rule: String
    public var title: String
    public var detail: String?
    /// Further numeric members of the document (for example the actual version after a conflict).
    public var extensions: [String: Int64]
    public var headers: HTTPFields

    public init(
        _ status: HTTPResponse.Status, rule: String, title: String, detail: String? = nil,
        extensions: [String: Int64] = [:], headers: HTTPFields = [:]
    ) {
        self.status = status
        self.rule = rule
        self.title = title
        self.detail = detail
        self.extensions = extensions
        self.headers = headers
    }

    public static func badRequest(_ rule: String, _ detail: String) -> Problem {
        Problem(.badRequest, rule: rule, title: "The request is malformed", detail: detail)
    }

    /// A domain rule refused the command.
    public static func ruleBroken(_ rule: String, _ detail: String) -> Problem {
        Problem(.unprocessableContent, rule: rule, title: "The request breaks a rule", detail: detail)
    }

    public static func notFound(_ detail: String) -> Problem {
        Problem(.notFound, rule: "not-found", title: "Not found", detail: detail)
    }

    public static func conflict(_ detail: String, actualVersion: Int64) -> Problem {
        Problem(.conflict, rule: "concurrent-write", title: "Somebody else wrote first", detail: detail,
                extensions: ["actualVersion": actualVersion])
    }

    public static func preconditionFailed(_ detail: String, actualVersion: Int64) -> Problem {
        Problem(.preconditionFailed, rule: "version-mismatch", title: "The entity changed since it was read", detail: detail,
                extensions: ["actualVersion": actualVersion], headers: [.eTag: ETag.make(actualVersion)])
    }

    /// The database could not be reached or did not answer in time: what was asked may or may not have been done,
    /// and a retry with the same `Idempotency-Key` finds out (it answers what was done, or does it).
    public static let databaseUnavailable = Problem(
        .serviceUnavailable, rule: "database-unavailable", title: "The database is unavailable",
        detail: "the service could not reach its database in time; retry a command with the same Idempotency-Key, which tells whether it was done",
        headers: [.retryAfter: "1"])

    public static func contentTooLarge(limit: Int) -> Problem {
        Problem(.contentTooLarge, rule: "body-too-large", title: "The request body is too large",
                detail: "a request body may have at most \(limit) bytes")
    }

    /// The document, encoded.
    public var body: Data {
        var members: [String: Any] = extensions.mapValues { $0 as Any }
        members["type"] = "urn:shop:problem:\(rule)"
        members["title"] = title
        members["status"] = Int(status.code)
        members["rule"] = rule
        if let detail { members["detail"] = detail }
        return (try? JSONSerialization.data(withJSONObject: members, options: [.sortedKeys])) ?? Data("{}".utf8)
    }

    public func response(from request: Request, context: some RequestContext) throws -> Response {
        var headers = headers
        headers[.contentType] = "application/problem+json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}

/// An error that knows its problem document: each context's domain error conforms, so that its rules
/// become HTTP statuses in one place, the context's own.
public protocol ProblemConvertible: Error {
    var problem: Problem { get }
    /// How a 500 logs it (its description by default).
    var logDescription: String { get }
}

extension ProblemConvertible {
    public var logDescription: String { "\(self)" }
}

extension Problem {
    /// A 500: the service failed in a way it should not have. The client learns nothing more; the log does.
    public static var internalError: Problem {
        Problem(.internalServerError, rule: "internal-error", title: "Internal error",
                detail: "the service failed to handle the request; this is a bug and has been logged")
    }
}

extension Problem: ProblemConvertible {
    public var problem: Problem { self }
}

/// An error that is another service's answer, to be passed on to the client unchanged (a gateway's).
public protocol PassedOnResponse: HTTPResponseError {}

/// Turns every error a route throws into a problem document: a ``ProblemConvertible`` as it says (the event store's
/// errors are, in ServiceRuntime), Hummingbird's errors as their 4xx, and anything else as a 500, logged, because it is a bug.
public struct ProblemMiddleware<Context: RequestContext>: RouterMiddleware {
    public init() {}

    public func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let answer as any PassedOnResponse {
            // Another service's answer, already a problem document: the client gets it as it is.
            return try answer.response(from: request, context: context)
        } catch {
            let problem = Self.problem(for: error)
            if problem.status.code >= 500 {
                let description = (error as? any ProblemConvertible)?.logDescription ?? "\(error)"
                context.logger.error("request failed", metadata: ["error": "\(description)", "path": "\(request.uri.path)"])
            }
            return try problem.response(from: request, context: context)
        }
    }

    /// The problem document an error is answered with.
    public static func problem(for error: any Error) -> Problem {
        switch error {
        case let error as any ProblemConvertible:
            return error.problem
        case let error as HTTPError:
            if error.status == .notFound { return .notFound(error.body ?? "no such resource") }
            if error.status == .methodNotAllowed {
                return Problem(.methodNotAllowed, rule: "method-not-allowed", title: "Method not allowed", headers: error.headers)
            }
            return Problem(error.status, rule: "http-\(error.status.code)", title: error.status.reasonPhrase, detail: error.body,
                           headers: error.headers)
        case let error as any HTTPResponseError where error.status == .contentTooLarge:
            return .contentTooLarge(limit: JSONBody.maximumSize)
        default:
            return .internalError
        }
    }
}
