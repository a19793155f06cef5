import EventStore
import Hummingbird
import Projections
import ServiceKit

/// Where a query's view stands: the position of the last event it has applied, and whether it had not yet
/// reached the position the client asked for (`?minPosition=`) when the bounded wait ran out.
public struct ViewState: Encodable, Sendable {
    public let position: String
    public let stale: Bool
}

extension Projector {
    /// Waits, at most `maximumWait`, until the view has reached the request's `minPosition` (a position a
    /// command answered with), so that a client reads its own writes; then says where the view stands.
    public func state(for request: Request, maximumWait: Duration = .seconds(2)) async throws -> ViewState {
        guard let text = request.uri.queryParameters.get("minPosition") else {
            return ViewState(position: position.description, stale: false)
        }
        guard let wanted = Position(String(text)) else {
            throw Problem.badRequest("malformed-position", "'minPosition' must be a position such as 7391-1204, as a command answers")
        }
        let reached = await wait(until: wanted, timeout: maximumWait)
        return ViewState(position: position.description, stale: !reached)
    }
}
