import Essentials
import EventSourcing
import Foundation
import Testing

enum Shipment: Sendable, Equatable {
    case dispatched(Dispatched)
    case delivered(Delivered)

    struct Dispatched: Codable, Sendable, Equatable { var carrier: String; var at: Date }
    struct Delivered: Codable, Sendable, Equatable { var signedBy: String }

    static let codec = EventCodec<Shipment>(
        .event("shipping.dispatched", version: 2, embed: Shipment.dispatched) { if case .dispatched(let e) = $0 { e } else { nil } },
        .event("shipping.delivered", embed: Shipment.delivered) { if case .delivered(let e) = $0 { e } else { nil } },
        upcasters: [
            // Version 1 called the carrier "courier".
            Upcaster("shipping.dispatched", from: 1) { json in
                var json = json
                json["carrier"] = json["courier"]
                json["courier"] = nil
                return json
            },
        ]
    )
}

@Suite("Event codec")
struct EventCodecTests {
    let at = Date(timeIntervalSince1970: 1_790_000_000.123)

    @Test func encodesWithTheStableNameAndCurrentVersionAndDecodesBack() throws {
        let event = Shipment.dispatched(.init(carrier: "DHL", at: at))
        let encoded = try Shipment.codec.encode(event)
        #expect(encoded.type == "shipping.dispatched" && encoded.schemaVersion == 2)
        #expect(String(decoding: encoded.payload, as: UTF8.self).contains(#""at":"2026-09-21T14:13:20.123Z""#))
        #expect(try Shipment.codec.decode(type: encoded.type, schemaVersion: 2, payload: encoded.payload) == event)
        let delivered = try Shipment.codec.encode(.delivered(.init(signedBy: "Kim")))
        #expect(delivered.type == "shipping.delivered" && delivered.schemaVersion == 1)
    }

    @Test func upcastsOlderPayloads() throws {
        let v1 = Data(#"{"courier":"UPS","at":"2026-09-21T14:13:20Z"}"#.utf8)
        let event = try Shipment.codec.decode(type: "shipping.dispatched", schemaVersion: 1, payload: v1)
        #expect(event == .dispatched(.init(carrier: "UPS", at: Date(timeIntervalSince1970: 1_790_000_000))))
    }

    @Test func refusesWhatItCannotRead() throws {
        #expect(throws: EventCodecError.unknownType("shipping.lost")) {
            try Shipment.codec.decode(type: "shipping.lost", schemaVersion: 1, payload: Data("{}".utf8))
        }
        #expect(try Shipment.codec.decodeIfKnown(type: "shipping.lost", schemaVersion: 1, payload: Data("{}".utf8)) == nil)
        #expect(throws: EventCodecError.unsupportedSchemaVersion(type: "shipping.delivered", stored: 2, current: 1)) {
            try Shipment.codec.decode(type: "shipping.delivered", schemaVersion: 2, payload: Data("{}".utf8))
        }
        let error = #expect(throws: EventCodecError.self) {
            try Shipment.codec.decode(type: "shipping.delivered", schemaVersion: 1, payload: Data(#"{"signed":"x"}"#.utf8))
        }
        guard case .invalidPayload(let type, _)? = error else { Issue.record("expected invalidPayload"); return }
        #expect(type == "shipping.delivered")
    }

    @Test func aMissingUpcasterIsNamed() throws {
        let codec = EventCodec<Shipment>(
            .event("shipping.delivered", version: 3, embed: Shipment.delivered) { if case .delivered(let e) = $0 { e } else { nil } },
            upcasters: [Upcaster("shipping.delivered", from: 2) { $0 }])
        #expect(throws: EventCodecError.missingUpcaster(type: "shipping.delivered", from: 1)) {
            try codec.decode(type: "shipping.delivered", schemaVersion: 1, payload: Data("{}".utf8))
        }
        #expect(throws: EventCodecError.unregisteredEvent("dispatched(EventSourcingTests.Shipment.Dispatched(carrier: \"x\", at: 1970-01-01 00:00:00 +0000))")) {
            try codec.encode(.dispatched(.init(carrier: "x", at: Date(timeIntervalSince1970: 0))))
        }
    }

    /// A renamed type: events stored under its old name (and an older schema version) decode as the renamed type,
    /// readers filtering by type name find both names, and new events get the new name.
    @Test func aRenamedTypeReadsItsEventsStoredUnderTheOldName() throws {
        let codec = EventCodec<Shipment>(
            .event("shipping.shipment-dispatched", version: 2, embed: Shipment.dispatched) { if case .dispatched(let e) = $0 { e } else { nil } },
            .event("shipping.delivered", embed: Shipment.delivered) { if case .delivered(let e) = $0 { e } else { nil } },
            upcasters: [Upcaster("shipping.shipment-dispatched", from: 1) { json in
                var json = json
                json["carrier"] = json["courier"]
                return json
            }],
            renamed: ["shipping.dispatched": "shipping.shipment-dispatched"])
        let v1 = Data(#"{"courier":"UPS","at":"2026-09-21T14:13:20Z"}"#.utf8)
        let event = Shipment.dispatched(.init(carrier: "UPS", at: Date(timeIntervalSince1970: 1_790_000_000)))
        #expect(try codec.decode(type: "shipping.dispatched", schemaVersion: 1, payload: v1) == event)
        #expect(try codec.decodeIfKnown(type: "shipping.dispatched", schemaVersion: 1, payload: v1) == event)
        #expect(codec.typeNames == ["shipping.dispatched", "shipping.shipment-dispatched", "shipping.delivered"])
        #expect(try codec.encode(event).type == "shipping.shipment-dispatched")
    }

    @Test func jsonValuesRoundTrip() throws {
        let value: JSON = ["name": "mug", "price": 1250, "ratio": 0.5, "tags": ["a", nil, true], "nested": ["x": 1]]
        let data = try JSONEncoder().encode(value)
        #expect(try JSONDecoder().decode(JSON.self, from: data) == value)
        #expect(value["name"]?.stringValue == "mug" && value["price"]?.integerValue == 1250 && value["missing"] == nil)
        var string: JSON = "text"
        string["key"] = 1
        #expect(string == "text")
    }
}

@Suite("Deciders")
struct DeciderTests {
    enum Light: Decider {
        enum Command: Sendable { case switchOn, switchOff }
        enum Event: Sendable { case switchedOn, switchedOff }
        enum Failure: Error { case alreadyOn, alreadyOff }
        static let initialState = false

        static func decide(_ command: Command, _ isOn: Bool) throws(Failure) -> [Event] {
            switch (command, isOn) {
            case (.switchOn, false): [.switchedOn]
            case (.switchOff, true): [.switchedOff]
            case (.switchOn, true): throw .alreadyOn
            case (.switchOff, false): throw .alreadyOff
            }
        }

        static func evolve(_ isOn: Bool, _ event: Event) -> Bool { event == .switchedOn }
    }

    @Test func replayFoldsFromTheInitialState() throws {
        #expect(Light.replay([]) == false)
        #expect(Light.replay([.switchedOn, .switchedOff, .switchedOn]) == true)
        #expect(throws: Light.Failure.alreadyOn) { try Light.decide(.switchOn, Light.replay([.switchedOn])) }
        #expect(try Light.decide(.switchOff, Light.replay([.switchedOn])).count == 1)
    }
}
