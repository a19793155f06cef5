/// What an event carries besides its payload: where it came from and why.
public struct EventMetadata: Codable, Sendable, Hashable {
    /// The id shared by everything one original request caused, across services.
    public var correlationID: String?
    /// The id of the message (command or event) that caused this event.
    public var causationID: String?
    /// The W3C trace context of the request that caused it, so consumers can continue its trace.
    public var traceparent: String?
    /// Who caused it: a customer id, `admin:<name>`, or a process such as `saga:order-fulfilment`.
    public var actor: String?

    public init(correlationID: String? = nil, causationID: String? = nil, traceparent: String? = nil, actor: String? = nil) {
        self.correlationID = correlationID
        self.causationID = causationID
        self.traceparent = traceparent
        self.actor = actor
    }

    enum CodingKeys: String, CodingKey {
        case correlationID = "correlationId"
        case causationID = "causationId"
        case traceparent
        case actor
    }
}

extension EventMetadata {
    /// What the current request (or saga step) is: events written inside it carry this metadata unless given
    /// other. Set by the services' request middleware, and by the saga for the order it works on.
    @TaskLocal public static var current: EventMetadata?
}
