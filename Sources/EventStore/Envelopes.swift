import Essentials
import EventSourcing
import Foundation

/// An event to append: its id, stable type name, schema version, JSON payload and metadata.
public struct NewEvent: Sendable {
    /// Unique in the whole store. Appending an id that is already stored never stores it twice (see
    /// ``EventStore/append(_:to:expectedVersion:)``), so an id derived from a request makes a retry safe.
    public var id: UUID
    public var type: String
    public var schemaVersion: Int
    /// A JSON document (object).
    public var payload: Data
    public var metadata: EventMetadata

    /// `metadata` defaults to the current request's (`EventMetadata.current`).
    public init(id: UUID = .timeOrdered(), type: String, schemaVersion: Int = 1, payload: Data, metadata: EventMetadata? = nil) {
        self.id = id
        self.type = type
        self.schemaVersion = schemaVersion
        self.payload = payload
        self.metadata = metadata ?? EventMetadata.current ?? EventMetadata()
    }

    /// Encodes a typed event with its codec.
    public init<Event>(_ event: Event, codec: EventCodec<Event>, id: UUID = .timeOrdered(), metadata: EventMetadata? = nil) throws(EventCodecError) {
        let encoded = try codec.encode(event)
        self.init(id: id, type: encoded.type, schemaVersion: encoded.schemaVersion, payload: encoded.payload, metadata: metadata)
    }
}

/// An event as stored.
public struct RecordedEvent: Sendable, Hashable {
    public let id: UUID
    public let stream: StreamName
    /// 1 for the stream's first event.
    public let streamVersion: Int64
    /// Where it stands in commit order; a reader's checkpoint.
    public let position: Position
    public let type: String
    public let schemaVersion: Int
    public let payload: Data
    /// The metadata as stored (JSON). ``metadata`` decodes it when asked: most readers (projections among
    /// them) never look at it, so reading does not pay for decoding it.
    public let metadataJSON: Data
    public let recordedAt: Date

    /// Correlation, causation, trace context and actor.
    public var metadata: EventMetadata {
        (try? JSONDecoder().decode(EventMetadata.self, from: metadataJSON)) ?? EventMetadata()
    }

    /// The global position: unique, increasing in insertion (not commit) order.
    public var globalPosition: Int64 { position.globalPosition }

    /// The typed event, upcast to the codec's current schema version.
    public func decode<Event>(with codec: EventCodec<Event>) throws(EventCodecError) -> Event {
        try codec.decode(type: type, schemaVersion: schemaVersion, payload: payload)
    }
}

/// What an append wrote.
public struct AppendResult: Sendable, Hashable {
    /// The stream's version after the append: the version of its last event.
    public let streamVersion: Int64
    /// The positions of the first and the last event written (they share the transaction id).
    public let firstPosition: Position
    public let lastPosition: Position
    /// True when every event was already stored by an earlier append of the same batch: nothing was written
    /// and the positions are those of that append.
    public let wasDuplicate: Bool

    /// Where a reader must have reached to have seen the whole append: for read-your-writes.
    public var position: Position { lastPosition }
}
