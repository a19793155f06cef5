import Essentials
import Foundation

/// Maps typed events to what an event store keeps (a stable type name, a schema version and a JSON payload)
/// and back, upcasting payloads written under older schema versions so that handlers only ever see the
/// current shape.
///
/// Type names are part of the stored data and never derive from Swift type names: renaming a Swift type
/// must not orphan its events. Name them `context.past-tense-fact`, for example `catalog.product-added`.
///
/// ```swift
/// static let codec = EventCodec<ProductEvent>(
///     .event("catalog.product-added", version: 2, embed: ProductEvent.added) {
///         if case .added(let event) = $0 { event } else { nil }
///     },
///     upcasters: [
///         Upcaster("catalog.product-added", from: 1) { json in
///             var json = json
///             json["currency"] = "EUR"   // version 1 had no currency
///             return json
///         },
///     ]
/// )
/// ```
public struct EventCodec<Event: Sendable>: Sendable {
    /// An event as the store keeps it.
    public struct Encoded: Sendable, Equatable {
        public var type: String
        public var schemaVersion: Int
        public var payload: Data

        public init(type: String, schemaVersion: Int, payload: Data) {
            self.type = type
            self.schemaVersion = schemaVersion
            self.payload = payload
        }
    }

    /// One registered event type: its stored name, its current schema version, and how its payload
    /// goes in and out of `Event`.
    public struct EventType: Sendable {
        public let name: String
        public let schemaVersion: Int
        fileprivate let encode: @Sendable (Event, JSONEncoder) throws -> Data?
        fileprivate let decode: @Sendable (Data, JSONDecoder) throws -> Event

        /// - Parameters:
        ///   - name: the stable stored type name.
        ///   - version: the current schema version of the payload (1 for a new type).
        ///   - embed: makes an `Event` of a payload, typically an enum case such as `ProductEvent.added`.
        ///   - extract: the payload if the event is of this type, else `nil`.
        public static func event<Payload: Codable & Sendable>(
            _ name: String,
            version: Int = 1,
            embed: @escaping @Sendable (Payload) -> Event,
            extract: @escaping @Sendable (Event) -> Payload?
        ) -> EventType {
            precondition(!name.isEmpty && version >= 1, "an event type needs a name and a version of at least 1")
            return EventType(
                name: name,
                schemaVersion: version,
                encode: { event, encoder in try extract(event).map { try encoder.encode($0) } },
                decode: { data, decoder in embed(try decoder.decode(Payload.self, from: data)) }
            )
        }
    }

    private let types: [EventType]
    private let typesByName: [String: EventType]
    private let upcasters: [String: [Int: Upcaster]]
    /// Names events were stored under before their type was renamed, and the names they go by now.
    private let renamed: [String: String]
    private let encoder: JSONEncoder
    private let decoder: JSONDecoder

    public init(_ types: EventType..., upcasters: [Upcaster] = [], renamed: [String: String] = [:]) {
        self.init(types: types, upcasters: upcasters, renamed: renamed)
    }

    /// - Parameter renamed: for each type that was renamed, the name its events were stored under and the name it goes
    ///   by now (a stored name is part of the data: events are never rewritten). Events stored under the old name
    ///   decode as the new; new events are stored under the new name.
    public init(types: [EventType], upcasters: [Upcaster] = [], renamed: [String: String] = [:]) {
        var byName: [String: EventType] = [:]
        for type in types {
            precondition(byName.updateValue(type, forKey: type.name) == nil, "event type \(type.name) is registered twice")
        }
        var byVersion: [String: [Int: Upcaster]] = [:]
        for upcaster in upcasters {
            guard let type = byName[upcaster.type] else {
                preconditionFailure("upcaster for \(upcaster.type), which is not registered")
            }
            precondition(upcaster.fromVersion < type.schemaVersion, "upcaster from \(upcaster.type) v\(upcaster.fromVersion), which is not older than v\(type.schemaVersion)")
            precondition(byVersion[upcaster.type, default: [:]].updateValue(upcaster, forKey: upcaster.fromVersion) == nil, "two upcasters for \(upcaster.type) v\(upcaster.fromVersion)")
        }
        for (old, new) in renamed {
            precondition(byName[new] != nil, "\(old) is renamed to \(new), which is not registered")
            precondition(byName[old] == nil, "\(old) is renamed, and registered too")
        }
        self.types = types
        self.typesByName = byName
        self.upcasters = byVersion
        self.renamed = renamed
        self.encoder = .eventPayloads
        self.decoder = .eventPayloads
    }

    /// The type names its events may be stored under: the registered ones, and the names renamed types had before.
    public var typeNames: Set<String> { Set(typesByName.keys).union(renamed.keys) }

    public func encode(_ event: Event) throws(EventCodecError) -> Encoded {
        for type in types {
            let payload: Data?
            do {
                payload = try type.encode(event, encoder)
            } catch {
                throw .invalidPayload(type: type.name, reason: "\(error)")
            }
            if let payload {
                return Encoded(type: type.name, schemaVersion: type.schemaVersion, payload: payload)
            }
        }
        throw .unregisteredEvent(String(describing: event))
    }

    /// Decodes a stored event, upcasting its payload first if it was written under an older schema version.
    public func decode(type storedName: String, schemaVersion: Int, payload: Data) throws(EventCodecError) -> Event {
        let name = renamed[storedName] ?? storedName
        guard let type = typesByName[name] else { throw .unknownType(storedName) }
        guard schemaVersion <= type.schemaVersion else {
            throw .unsupportedSchemaVersion(type: name, stored: schemaVersion, current: type.schemaVersion)
        }
        var payload = payload
        if schemaVersion < type.schemaVersion {
            payload = try upcast(name, payload, from: schemaVersion, to: type.schemaVersion)
        }
        do {
            return try type.decode(payload, decoder)
        } catch {
            throw .invalidPayload(type: name, reason: "\(error)")
        }
    }

    /// Like ``decode(type:schemaVersion:payload:)``, but `nil` for a type this codec does not know: for
    /// consumers that read every event of a store and care about some of them.
    public func decodeIfKnown(type name: String, schemaVersion: Int, payload: Data) throws(EventCodecError) -> Event? {
        guard typesByName[renamed[name] ?? name] != nil else { return nil }
        return try decode(type: name, schemaVersion: schemaVersion, payload: payload)
    }

    private func upcast(_ name: String, _ payload: Data, from stored: Int, to current: Int) throws(EventCodecError) -> Data {
        var json: JSON
        do {
            json = try decoder.decode(JSON.self, from: payload)
        } catch {
            throw .invalidPayload(type: name, reason: "\(error)")
        }
        for version in stored..<current {
            guard let upcaster = upcasters[name]?[version] else {
                throw .missingUpcaster(type: name, from: version)
            }
            do {
                json = try upcaster.transform(json)
            } catch {
                throw .upcastFailed(type: name, from: version, reason: "\(error)")
            }
        }
        do {
            return try encoder.encode(json)
        } catch {
            throw .invalidPayload(type: name, reason: "\(error)")
        }
    }
}

/// Turns the JSON payload of one event type from schema version `fromVersion` into `fromVersion + 1`.
/// A codec chains them, so an event stored as v1 reaches v3 through the v1 and v2 upcasters.
public struct Upcaster: Sendable {
    public let type: String
    public let fromVersion: Int
    let transform: @Sendable (JSON) throws -> JSON

    public init(_ type: String, from version: Int, _ transform: @escaping @Sendable (JSON) throws -> JSON) {
        self.type = type
        self.fromVersion = version
        self.transform = transform
    }
}

public enum EventCodecError: Error, Equatable, CustomStringConvertible {
    /// `encode` was given an event that no registered type extracts.
    case unregisteredEvent(String)
    /// A stored type name that this codec does not know.
    case unknownType(String)
    /// Stored by a newer version of the code than this one.
    case unsupportedSchemaVersion(type: String, stored: Int, current: Int)
    case missingUpcaster(type: String, from: Int)
    case upcastFailed(type: String, from: Int, reason: String)
    case invalidPayload(type: String, reason: String)

    public var description: String {
        switch self {
        case .unregisteredEvent(let event): "no event type is registered for \(event)"
        case .unknownType(let type): "unknown event type '\(type)'"
        case .unsupportedSchemaVersion(let type, let stored, let current):
            "\(type) is stored with schema version \(stored), newer than this code's \(current)"
        case .missingUpcaster(let type, let from): "no upcaster for \(type) from schema version \(from)"
        case .upcastFailed(let type, let from, let reason): "upcasting \(type) from schema version \(from) failed: \(reason)"
        case .invalidPayload(let type, let reason): "payload of \(type) does not fit its type: \(reason)"
        }
    }
}

extension JSONEncoder {
    /// The encoding of event payloads and metadata: ``JSONEncoder/millisecondDates`` (dates keep milliseconds, no finer).
    public static var eventPayloads: JSONEncoder { .millisecondDates }
}

extension JSONDecoder {
    /// The decoding of event payloads and metadata: ``JSONDecoder/millisecondDates``.
    public static var eventPayloads: JSONDecoder { .millisecondDates }
}
