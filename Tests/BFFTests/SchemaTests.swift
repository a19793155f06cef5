@testable import CatalogService
@testable import CLIBFF
import Essentials
import Foundation
@testable import Gateway
@testable import OrderingService
import ServiceRuntime
import SharedKernel
import Testing
@testable import WebBFF

/// The OpenAPI documents' component schemas are written by hand (they carry what a type cannot say: bounds, patterns,
/// examples), beside the `Codable` types that the BFFs and the services actually encode. These tests hold the two
/// together: for every component, its properties, which of them are required, and their JSON types are those of the
/// type's encoding.
@Suite("Document schemas match the Codable types")
struct SchemaTests {
    nonisolated(unsafe) static let web: [(String, any Codable.Type)] = [  // metatypes: immutable
        ("Money", Money.self), ("Session", DevelopmentLogin.Session.self), ("ProductsPage", WebBFF.ProductsPage.self),
        ("ProductDetail", CatalogAPI.ProductView.self), ("Cart", WebBFF.Cart.self), ("Accepted", WebBFF.Accepted.self),
        ("OrderList", WebBFF.OrderList.self), ("OrderPage", WebBFF.OrderPage.self), ("Written", Written.self),
        ("Saga", SagaView.self),
    ]
    nonisolated(unsafe) static let cli: [(String, any Codable.Type)] = [
        ("Money", Money.self), ("Session", DevelopmentLogin.Session.self), ("Me", CLIBFF.Me.self), ("Products", CLIBFF.Products.self),
        ("Product", CLIBFF.ProductView.self), ("Cart", CLIBFF.CartView.self), ("Order", CLIBFF.Outcome.self),
        ("OrderList", CLIBFF.OrderList.self),
    ]

    @Test func everyComponentOfTheWebDocumentIsItsType() throws {
        try check(WebBFF.schemas, Self.web)
    }

    @Test func everyComponentOfTheCLIDocumentIsItsType() throws {
        try check(CLIBFF.schemas, Self.cli)
    }

    /// The check itself must find what it is for: a property missing, one too many, a required one optional, a type.
    @Test func aSchemaThatDisagreesIsFound() throws {
        struct Sample: Codable { let name: String, count: Int, note: String? }
        let right = Schema.object(["name": Schema.string, "count": Schema.integer], optional: ["note": Schema.string])
        #expect(try mismatches(Sample.self, right, [:]).isEmpty)
        for wrong in [
            Schema.object(["name": Schema.string, "count": Schema.integer]),
            Schema.object(["name": Schema.string, "count": Schema.integer, "note": Schema.string]),
            Schema.object(["name": Schema.string, "count": Schema.integer], optional: ["note": Schema.string, "extra": Schema.string]),
            Schema.object(["name": Schema.string, "count": Schema.string], optional: ["note": Schema.string]),
            Schema.object(["name": Schema.string], optional: ["count": Schema.integer, "note": Schema.string]),
        ] {
            #expect(try !mismatches(Sample.self, wrong, [:]).isEmpty, "\(wrong)")
        }
    }

    private func check(_ schemas: [String: JSON], _ types: [(String, any Codable.Type)]) throws {
        #expect(Set(schemas.keys) == Set(types.map(\.0)), "every component has its type named here")
        for (name, type) in types {
            let schema = try #require(schemas[name])
            let found = try mismatches(type, schema, schemas)
            #expect(found.isEmpty, "\(name) (\(type)): \(found.joined(separator: "; "))")
        }
    }

    private func mismatches(_ type: any Codable.Type, _ schema: JSON, _ components: [String: JSON]) throws -> [String] {
        let probe = Probe()
        let sample = try type.init(from: ProbeDecoder(probe: probe, path: ""))
        let encoded = try JSONDecoder().decode(JSON.self, from: JSONEncoder.millisecondDates.encode(sample))
        var found: [String] = []
        compare(encoded, path: "", schema: schema, components: components, probe: probe, into: &found)
        return found
    }

    /// Compares an encoded sample (every optional present) with `schema`; the probe knows which paths the type decodes
    /// with `decode` rather than `decodeIfPresent`, and which are dictionaries.
    private func compare(_ value: JSON, path: String, schema: JSON, components: [String: JSON], probe: Probe, into found: inout [String]) {
        var schema = schema
        if let reference = schema["$ref"]?.stringValue, let name = reference.split(separator: "/").last {
            schema = components[String(name)] ?? [:]
        }
        if case .array(let choices)? = schema["oneOf"], let first = choices.first(where: { $0["type"]?.stringValue != "null" }) {
            schema = first
        }
        let type = schema["type"]?.stringValue
        switch value {
        case .object(let object):
            guard type == "object", case .object(let properties)? = schema["properties"] else {
                found.append("\(path.isEmpty ? "the value" : path) is an object, the schema says \(type ?? "nothing")")
                return
            }
            if probe.dictionaries.contains(path) { return }  // a dictionary: its members are the schema's to name
            let documentedRequired: Set<String> = if case .array(let names)? = schema["required"] { Set(names.compactMap(\.stringValue)) } else { [] }
            for key in Set(object.keys).subtracting(properties.keys).sorted() { found.append("\(path + key) is encoded, not documented") }
            for key in Set(properties.keys).subtracting(object.keys).sorted() { found.append("\(path + key) is documented, never encoded") }
            for (key, member) in object {
                guard let property = properties[key] else { continue }
                let isRequired = probe.required.contains(path + key)
                if isRequired != documentedRequired.contains(key) {
                    found.append("\(path + key) is \(isRequired ? "required" : "optional") in the type, \(isRequired ? "optional" : "required") in the schema")
                }
                compare(member, path: path + key + ".", schema: property, components: components, probe: probe, into: &found)
            }
        case .array(let array):
            guard type == "array", let items = schema["items"] else { found.append("\(path) is an array, the schema says \(type ?? "nothing")"); return }
            for element in array { compare(element, path: path, schema: items, components: components, probe: probe, into: &found) }
        case .bool:
            if type != "boolean" { found.append("\(path) is a boolean, the schema says \(type ?? "nothing")") }
        case .integer:
            if type != "integer" && type != "number" { found.append("\(path) is a number, the schema says \(type ?? "nothing")") }
        case .double:
            if type != "number" { found.append("\(path) is a number, the schema says \(type ?? "nothing")") }
        case .string:
            if type != "string" { found.append("\(path) is a string, the schema says \(type ?? "nothing")") }
        case .null:
            found.append("\(path) is null although the sample has every member")
        }
    }
}

// MARK: A decoder that makes a sample of any Decodable type

/// What a ``ProbeDecoder`` learnt: the paths (`a.b.`) of the members decoded as required.
final class Probe {
    var required: Set<String> = []
    /// The paths of dictionaries (their members are whatever the schema names).
    var dictionaries: Set<String> = []
}

/// A primitive, decoded through the generic path (so that one implementation serves every overload).
struct Sample<Value>: Decodable {
    let value: Value
    init(from decoder: any Decoder) throws {
        let path = (decoder as? ProbeDecoder)?.path ?? ""
        value = try ProbeDecoder.primitive(Value.self, path: path)
    }
}

/// Makes a value of a `Decodable` type with every member present (optionals too, and one element per array): strings
/// are "EUR" (a currency the shop takes), numbers 1, booleans true, dates now, and enums their first case.
struct ProbeDecoder: Decoder {
    let probe: Probe
    let path: String
    var codingPath: [any CodingKey] = []
    var userInfo: [CodingUserInfoKey: Any] = [:]

    private static func firstCase<C: CaseIterable>(of type: C.Type) -> Any? { type.allCases.first }

    static func primitive<Value>(_ type: Value.Type, path: String) throws -> Value {
        switch type {
        case is String.Type: return "EUR" as! Value
        case is Bool.Type: return true as! Value
        case let number as any BinaryInteger.Type: return number.init(1) as! Value
        case let number as any BinaryFloatingPoint.Type: return number.init(1) as! Value
        default: throw DecodingError.typeMismatch(type, .init(codingPath: [], debugDescription: "not a primitive at \(path)"))
        }
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        KeyedDecodingContainer(Keyed<Key>(probe: probe, path: path))
    }
    func unkeyedContainer() throws -> any UnkeyedDecodingContainer { Unkeyed(probe: probe, path: path) }
    func singleValueContainer() throws -> any SingleValueDecodingContainer { Single(probe: probe, path: path) }

    static func sample<T: Decodable>(_ type: T.Type, probe: Probe, path: String) throws -> T {
        if type == Date.self { return Date() as! T }
        if type == String.self { return "EUR" as! T }
        if type == Bool.self { return true as! T }
        if let number = type as? any (BinaryInteger & Decodable).Type { return number.init(1) as! T }
        if let number = type as? any (BinaryFloatingPoint & Decodable).Type { return number.init(1) as! T }
        if let cases = type as? any CaseIterable.Type, let first = firstCase(of: cases) as? T { return first }
        return try T(from: ProbeDecoder(probe: probe, path: path))
    }

    struct Keyed<Key: CodingKey>: KeyedDecodingContainerProtocol {
        let probe: Probe, path: String
        var codingPath: [any CodingKey] = []
        /// Asked by a dictionary, which then has no members.
        var allKeys: [Key] { probe.dictionaries.insert(path); return [] }
        func contains(_ key: Key) -> Bool { true }
        func decodeNil(forKey key: Key) throws -> Bool { false }
        func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
            probe.required.insert(path + key.stringValue)
            return try ProbeDecoder.sample(type, probe: probe, path: path + key.stringValue + ".")
        }
        func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
            try ProbeDecoder.sample(type, probe: probe, path: path + key.stringValue + ".")
        }
        func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try decode(Sample<Bool>.self, forKey: key).value }
        func decode(_ type: String.Type, forKey key: Key) throws -> String { try decode(Sample<String>.self, forKey: key).value }
        func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try decode(Sample<Double>.self, forKey: key).value }
        func decode(_ type: Float.Type, forKey key: Key) throws -> Float { try decode(Sample<Float>.self, forKey: key).value }
        func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try decode(Sample<Int>.self, forKey: key).value }
        func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try decode(Sample<Int8>.self, forKey: key).value }
        func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try decode(Sample<Int16>.self, forKey: key).value }
        func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try decode(Sample<Int32>.self, forKey: key).value }
        func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try decode(Sample<Int64>.self, forKey: key).value }
        func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try decode(Sample<UInt>.self, forKey: key).value }
        func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try decode(Sample<UInt8>.self, forKey: key).value }
        func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try decode(Sample<UInt16>.self, forKey: key).value }
        func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try decode(Sample<UInt32>.self, forKey: key).value }
        func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try decode(Sample<UInt64>.self, forKey: key).value }
        func decodeIfPresent(_ type: Bool.Type, forKey key: Key) throws -> Bool? { try decodeIfPresent(Sample<Bool>.self, forKey: key)?.value }
        func decodeIfPresent(_ type: String.Type, forKey key: Key) throws -> String? { try decodeIfPresent(Sample<String>.self, forKey: key)?.value }
        func decodeIfPresent(_ type: Double.Type, forKey key: Key) throws -> Double? { try decodeIfPresent(Sample<Double>.self, forKey: key)?.value }
        func decodeIfPresent(_ type: Float.Type, forKey key: Key) throws -> Float? { try decodeIfPresent(Sample<Float>.self, forKey: key)?.value }
        func decodeIfPresent(_ type: Int.Type, forKey key: Key) throws -> Int? { try decodeIfPresent(Sample<Int>.self, forKey: key)?.value }
        func decodeIfPresent(_ type: Int8.Type, forKey key: Key) throws -> Int8? { try decodeIfPresent(Sample<Int8>.self, forKey: key)?.value }
        func decodeIfPresent(_ type: Int16.Type, forKey key: Key) throws -> Int16? { try decodeIfPresent(Sample<Int16>.self, forKey: key)?.value }
        func decodeIfPresent(_ type: Int32.Type, forKey key: Key) throws -> Int32? { try decodeIfPresent(Sample<Int32>.self, forKey: key)?.value }
        func decodeIfPresent(_ type: Int64.Type, forKey key: Key) throws -> Int64? { try decodeIfPresent(Sample<Int64>.self, forKey: key)?.value }
        func decodeIfPresent(_ type: UInt.Type, forKey key: Key) throws -> UInt? { try decodeIfPresent(Sample<UInt>.self, forKey: key)?.value }
        func decodeIfPresent(_ type: UInt8.Type, forKey key: Key) throws -> UInt8? { try decodeIfPresent(Sample<UInt8>.self, forKey: key)?.value }
        func decodeIfPresent(_ type: UInt16.Type, forKey key: Key) throws -> UInt16? { try decodeIfPresent(Sample<UInt16>.self, forKey: key)?.value }
        func decodeIfPresent(_ type: UInt32.Type, forKey key: Key) throws -> UInt32? { try decodeIfPresent(Sample<UInt32>.self, forKey: key)?.value }
        func decodeIfPresent(_ type: UInt64.Type, forKey key: Key) throws -> UInt64? { try decodeIfPresent(Sample<UInt64>.self, forKey: key)?.value }
        func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
            probe.required.insert(path + key.stringValue)
            return KeyedDecodingContainer(Keyed<NestedKey>(probe: probe, path: path + key.stringValue + "."))
        }
        func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
            probe.required.insert(path + key.stringValue)
            return Unkeyed(probe: probe, path: path + key.stringValue + ".")
        }
        func superDecoder() throws -> any Decoder { ProbeDecoder(probe: probe, path: path) }
        func superDecoder(forKey key: Key) throws -> any Decoder { ProbeDecoder(probe: probe, path: path + key.stringValue + ".") }
    }

    /// One element.
    struct Unkeyed: UnkeyedDecodingContainer {
        let probe: Probe, path: String
        var codingPath: [any CodingKey] = []
        var count: Int? { 1 }
        var currentIndex = 0
        var isAtEnd: Bool { currentIndex >= 1 }
        init(probe: Probe, path: String) { self.probe = probe; self.path = path }
        mutating func decodeNil() throws -> Bool { false }
        mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
            currentIndex += 1
            return try ProbeDecoder.sample(type, probe: probe, path: path)
        }
        mutating func decode(_ type: Bool.Type) throws -> Bool { try decode(Sample<Bool>.self).value }
        mutating func decode(_ type: String.Type) throws -> String { try decode(Sample<String>.self).value }
        mutating func decode(_ type: Double.Type) throws -> Double { try decode(Sample<Double>.self).value }
        mutating func decode(_ type: Float.Type) throws -> Float { try decode(Sample<Float>.self).value }
        mutating func decode(_ type: Int.Type) throws -> Int { try decode(Sample<Int>.self).value }
        mutating func decode(_ type: Int8.Type) throws -> Int8 { try decode(Sample<Int8>.self).value }
        mutating func decode(_ type: Int16.Type) throws -> Int16 { try decode(Sample<Int16>.self).value }
        mutating func decode(_ type: Int32.Type) throws -> Int32 { try decode(Sample<Int32>.self).value }
        mutating func decode(_ type: Int64.Type) throws -> Int64 { try decode(Sample<Int64>.self).value }
        mutating func decode(_ type: UInt.Type) throws -> UInt { try decode(Sample<UInt>.self).value }
        mutating func decode(_ type: UInt8.Type) throws -> UInt8 { try decode(Sample<UInt8>.self).value }
        mutating func decode(_ type: UInt16.Type) throws -> UInt16 { try decode(Sample<UInt16>.self).value }
        mutating func decode(_ type: UInt32.Type) throws -> UInt32 { try decode(Sample<UInt32>.self).value }
        mutating func decode(_ type: UInt64.Type) throws -> UInt64 { try decode(Sample<UInt64>.self).value }
        mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
            currentIndex += 1
            return KeyedDecodingContainer(Keyed<NestedKey>(probe: probe, path: path))
        }
        mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer { currentIndex += 1; return Unkeyed(probe: probe, path: path) }
        mutating func superDecoder() throws -> any Decoder { ProbeDecoder(probe: probe, path: path) }
    }

    struct Single: SingleValueDecodingContainer {
        let probe: Probe, path: String
        var codingPath: [any CodingKey] = []
        func decodeNil() -> Bool { false }
        func decode(_ type: Bool.Type) throws -> Bool { try decode(Sample<Bool>.self).value }
        func decode(_ type: String.Type) throws -> String { try decode(Sample<String>.self).value }
        func decode(_ type: Double.Type) throws -> Double { try decode(Sample<Double>.self).value }
        func decode(_ type: Float.Type) throws -> Float { try decode(Sample<Float>.self).value }
        func decode(_ type: Int.Type) throws -> Int { try decode(Sample<Int>.self).value }
        func decode(_ type: Int8.Type) throws -> Int8 { try decode(Sample<Int8>.self).value }
        func decode(_ type: Int16.Type) throws -> Int16 { try decode(Sample<Int16>.self).value }
        func decode(_ type: Int32.Type) throws -> Int32 { try decode(Sample<Int32>.self).value }
        func decode(_ type: Int64.Type) throws -> Int64 { try decode(Sample<Int64>.self).value }
        func decode(_ type: UInt.Type) throws -> UInt { try decode(Sample<UInt>.self).value }
        func decode(_ type: UInt8.Type) throws -> UInt8 { try decode(Sample<UInt8>.self).value }
        func decode(_ type: UInt16.Type) throws -> UInt16 { try decode(Sample<UInt16>.self).value }
        func decode(_ type: UInt32.Type) throws -> UInt32 { try decode(Sample<UInt32>.self).value }
        func decode(_ type: UInt64.Type) throws -> UInt64 { try decode(Sample<UInt64>.self).value }
        func decode<T: Decodable>(_ type: T.Type) throws -> T { try ProbeDecoder.sample(type, probe: probe, path: path) }
    }
}
