/// A page of a context's published feed: integration events in the publisher's commit order.
public struct FeedPage<Event: Codable & Sendable & Equatable>: Codable, Sendable, Equatable {
    public struct Entry: Codable, Sendable, Equatable {
        /// Where the event stands in the publisher's commit order: a consumer's checkpoint.
        public let position: String
        public let id: String
        public let event: Event

        public init(position: String, id: String, event: Event) {
            self.position = position
            self.id = id
            self.event = event
        }
    }

    public let events: [Entry]
    /// Where to continue: the `after` of the next request.
    public let next: String

    public init(events: [Entry], next: String) {
        self.events = events
        self.next = next
    }
}
