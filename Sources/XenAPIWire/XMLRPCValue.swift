import Foundation

/// One XML-RPC value, as carried inside `<value>` in a method call or response.
public enum XMLRPCValue: Sendable, Hashable {
    /// A string: `<string>` or bare text inside `<value>`.
    case string(String)
    /// A 32-bit integer: `<int>` or `<i4>`.
    case int(Int32)
    /// A boolean: `<boolean>0</boolean>` or `<boolean>1</boolean>`.
    case boolean(Bool)
    /// A double-precision number: `<double>`.
    case double(Double)
    /// A date and time in its lexical ISO 8601 form (`19700101T00:00:00Z`): `<dateTime.iso8601>`.
    case dateTime(String)
    /// Binary data: `<base64>`.
    case base64(Data)
    /// A struct whose members keep the order of the document: `<struct>`.
    case `struct`([XMLRPCMember])
    /// An array: `<array><data>`.
    case array([XMLRPCValue])
    /// Nothing: `<nil/>` (an extension that Python's `allow_none` and xapi both use).
    case `nil`

    /// The name of this value's XML-RPC type, as used in error messages (`string`, `int`, ...).
    public var typeName: String {
        switch self {
        case .string: return "string"
        case .int: return "int"
        case .boolean: return "boolean"
        case .double: return "double"
        case .dateTime: return "dateTime.iso8601"
        case .base64: return "base64"
        case .struct: return "struct"
        case .array: return "array"
        case .nil: return "nil"
        }
    }

    /// The string payload, or nil when this is not a string.
    public var stringValue: String? {
        if case .string(let text) = self { return text }
        return nil
    }

    /// The integer payload, or nil when this is not an int.
    public var intValue: Int32? {
        if case .int(let number) = self { return number }
        return nil
    }

    /// The boolean payload, or nil when this is not a boolean.
    public var boolValue: Bool? {
        if case .boolean(let flag) = self { return flag }
        return nil
    }

    /// The double payload, or nil when this is not a double.
    public var doubleValue: Double? {
        if case .double(let number) = self { return number }
        return nil
    }

    /// The binary payload, or nil when this is not base64.
    public var dataValue: Data? {
        if case .base64(let bytes) = self { return bytes }
        return nil
    }

    /// The struct members in document order, or nil when this is not a struct.
    public var structMembers: [XMLRPCMember]? {
        if case .struct(let members) = self { return members }
        return nil
    }

    /// The array elements, or nil when this is not an array.
    public var arrayValue: [XMLRPCValue]? {
        if case .array(let elements) = self { return elements }
        return nil
    }

    /// True when this is `<nil/>`.
    public var isNil: Bool {
        if case .nil = self { return true }
        return false
    }

    /// The value of the struct member called `name` (nil when absent or not a struct).
    public subscript(member name: String) -> XMLRPCValue? {
        structMembers?.first { $0.name == name }?.value
    }

    /// A struct of string members built from ordered key/value pairs.
    public static func stringStruct(_ pairs: KeyValuePairs<String, String>) -> XMLRPCValue {
        .struct(pairs.map { XMLRPCMember($0.key, .string($0.value)) })
    }
}

extension XMLRPCValue: ExpressibleByStringLiteral {
    /// A string value from a literal.
    public init(stringLiteral value: String) { self = .string(value) }
}

extension XMLRPCValue: ExpressibleByIntegerLiteral {
    /// An int value from a literal.
    public init(integerLiteral value: Int32) { self = .int(value) }
}

extension XMLRPCValue: ExpressibleByBooleanLiteral {
    /// A boolean value from a literal.
    public init(booleanLiteral value: Bool) { self = .boolean(value) }
}

extension XMLRPCValue: ExpressibleByArrayLiteral {
    /// An array value from a literal.
    public init(arrayLiteral elements: XMLRPCValue...) { self = .array(elements) }
}
