import Foundation
import XenAPIWire

/// The XenAPI type of a field or parameter, which says how its value travels and is checked.
public indirect enum FieldKind: Sendable, Hashable {
    /// A string (also enums and opaque references).
    case string
    /// A reference `OpaqueRef:<uuid>` to an object of a class.
    case ref(String)
    /// A 64-bit integer (a string in XML-RPC, a number in JSON-RPC).
    case int
    /// A double.
    case float
    /// A boolean.
    case bool
    /// A date and time (`20261206T20:05:00Z`).
    case dateTime
    /// A set of values.
    case set(FieldKind)
    /// A map from string to string.
    case map

    /// The canonical empty value of the kind.
    public var defaultValue: XMLRPCValue {
        switch self {
        case .string: return .string("")
        case .ref: return .string(ObjectRef.null)
        case .int: return .string("0")
        case .float: return .double(0)
        case .bool: return .boolean(false)
        case .dateTime: return .dateTime(XenAPITime.epoch)
        case .set: return .array([])
        case .map: return .struct([])
        }
    }

    /// `value` in canonical form for the kind, or `FIELD_TYPE_ERROR [name]`.
    public func coerce(_ value: XMLRPCValue, name: String) throws(APIFailure) -> XMLRPCValue {
        switch (self, value) {
        case (.string, .string), (.ref, .string): return value
        case (.int, .string(let text)):
            guard let n = Int64(text) else { throw .fieldType(name) }
            return .string(String(n))
        case (.int, .int(let n)): return .string(String(n))
        case (.int, .double(let d)) where d == d.rounded() && abs(d) < 9.2e18: return .string(String(Int64(d)))
        case (.float, .double): return value
        case (.float, .int(let n)): return .double(Double(n))
        case (.float, .string(let text)):
            guard let d = Double(text) else { throw .fieldType(name) }
            return .double(d)
        case (.bool, .boolean): return value
        case (.bool, .string(let text)) where text == "true" || text == "false": return .boolean(text == "true")
        case (.dateTime, .dateTime): return value
        case (.dateTime, .string(let text)): return .dateTime(text)
        case (.set(let element), .array(let items)):
            var out: [XMLRPCValue] = []
            for item in items { out.append(try element.coerce(item, name: name)) }
            return .array(out)
        case (.map, .struct(let members)):
            for member in members where member.value.stringValue == nil { throw .fieldType(name) }
            return value
        default: throw .fieldType(name)
        }
    }

    /// The JSON form of a canonical value (ints as numbers), for JSON-RPC and the store.
    public func json(_ value: XMLRPCValue) -> Any {
        switch (self, value) {
        case (.int, .string(let text)): return Int64(text) ?? 0
        case (.set(let element), .array(let items)): return items.map { element.json($0) }
        default: return JSONValue.encode(value)
        }
    }

    /// The canonical value of a JSON form, or `FIELD_TYPE_ERROR [name]`.
    public func fromJSON(_ json: Any, name: String) throws(APIFailure) -> XMLRPCValue {
        try coerce(JSONValue.decode(json), name: name)
    }

    /// A short name of the type, as xapi's datamodel spells it.
    public var typeName: String {
        switch self {
        case .string: return "string"
        case .ref(let cls): return "\(cls) ref"
        case .int: return "int"
        case .float: return "float"
        case .bool: return "bool"
        case .dateTime: return "datetime"
        case .set(let element): return "\(element.typeName) set"
        case .map: return "(string -> string) map"
        }
    }
}
