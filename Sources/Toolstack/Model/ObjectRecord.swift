import Foundation
import XenAPIWire

/// One object of the database: its class, reference and stored fields (canonical values).
public struct ObjectRecord: Sendable, Hashable {
    /// The class name (`VDI`).
    public var cls: String
    /// The reference (`OpaqueRef:…`).
    public var ref: String
    /// The stored fields by name (reverse-reference sets are not stored).
    public var fields: [String: XMLRPCValue]

    /// A new record of `spec` with every field at its default, then `values` over it.
    public init(_ spec: ClassSpec, ref: String = ObjectRef.make(), uuid: String = ObjectRef.uuid(),
                _ values: [String: XMLRPCValue] = [:]) {
        cls = spec.name
        self.ref = ref
        var fields: [String: XMLRPCValue] = [:]
        for f in spec.fields where f.reverse == nil { fields[f.name] = f.defaultValue }
        fields["uuid"] = .string(uuid)
        if spec.field("allowed_operations") != nil { fields["allowed_operations"] = .array(spec.operations.map { .string($0) }) }
        for (k, v) in values { fields[k] = v }
        self.fields = fields
    }

    /// A record with exactly these fields (as loaded from a store).
    public init(cls: String, ref: String, fields: [String: XMLRPCValue]) {
        self.cls = cls
        self.ref = ref
        self.fields = fields
    }

    /// The uuid.
    public var uuid: String { fields["uuid"]?.stringValue ?? "" }

    /// A string field (empty when absent).
    public func string(_ name: String) -> String { fields[name]?.stringValue ?? "" }

    /// A boolean field (false when absent).
    public func bool(_ name: String) -> Bool { fields[name]?.boolValue ?? false }

    /// An int field (0 when absent).
    public func int(_ name: String) -> Int64 { fields[name]?.stringValue.flatMap { Int64($0) } ?? 0 }

    /// A map field as a dictionary.
    public func map(_ name: String) -> [String: String] {
        var out: [String: String] = [:]
        for m in fields[name]?.structMembers ?? [] { out[m.name] = m.value.stringValue ?? "" }
        return out
    }

    /// Sets a map field from a dictionary (keys sorted).
    public mutating func setMap(_ name: String, _ map: [String: String]) {
        fields[name] = .struct(map.keys.sorted().map { XMLRPCMember($0, .string(map[$0]!)) })
    }

    /// A set-of-strings field.
    public func strings(_ name: String) -> [String] { fields[name]?.arrayValue?.compactMap(\.stringValue) ?? [] }

    /// The stored fields as JSON text (for a store).
    public func jsonText(spec: ClassSpec) -> String {
        var object: [String: Any] = [:]
        for (name, value) in fields {
            object[name] = spec.field(name)?.kind.json(value) ?? JSONValue.encode(value)
        }
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    /// A record read back from its JSON text (unknown fields kept as decoded, missing ones defaulted).
    public static func fromJSON(cls: String, ref: String, text: String) -> ObjectRecord? {
        guard let spec = DataModel.classes[cls],
              let object = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] else { return nil }
        var fields: [String: XMLRPCValue] = [:]
        for f in spec.fields where f.reverse == nil { fields[f.name] = f.defaultValue }
        for (name, json) in object {
            if let f = spec.field(name) {
                fields[name] = (try? f.kind.fromJSON(json, name: name)) ?? f.defaultValue
            } else {
                fields[name] = JSONValue.decode(json)
            }
        }
        return ObjectRecord(cls: cls, ref: ref, fields: fields)
    }
}
