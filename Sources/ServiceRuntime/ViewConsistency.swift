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
    /// Waits, at most `maximumWait`, until the view has reached the request's `minPosition`, so that a client reads
    /// its own writes; then says where the view stands.
    ///
    /// `minPosition` is a position a command answered with, or `head`: the store's head as this request arrives, so
    /// that every write acknowledged before it is seen, whichever instance took it (what the BFF asks for when a
    /// customer reads their own orders; it costs one query of the store).
    public func state(for request: Request, maximumWait: Duration = .seconds(2)) async throws -> ViewState {
        guard let text = request.uri.queryParameters.get("minPosition") else {
            return ViewState(position: position.description, stale: false)
        }
        let wanted: Position
        if text == "head" {
            wanted = try await store.headPosition()
        } else if let position = Position(String(text)) {
            wanted = position
        } else {
            throw Problem.badRequest("malformed-position", "'minPosition' must be a position such as 7391-1204, as a command answers, or 'head'")
        }
        let reached = await wait(until: wanted, timeout: maximumWait)
        return ViewState(position: position.description, stale: !reached)
    }
}
