import Foundation

/// Conversions between Swift values and the XenAPI wire encoding (int64 as decimal strings,
/// maps as structs of strings, references as strings).
public enum XenAPIValue {
    /// An int64 as XenAPI sends it: a decimal string.
    public static func int64(_ number: Int64) -> XMLRPCValue {
        .string(String(number))
    }

    /// A `(string → string) map` as a struct, members sorted by key.
    public static func map(_ map: [String: String]) -> XMLRPCValue {
        .struct(map.sorted { $0.key < $1.key }.map { XMLRPCMember($0.key, .string($0.value)) })
    }

    /// Reads a string (or reference) result.
    public static func string(_ value: XMLRPCValue, _ what: String) throws(XenAPIError) -> String {
        guard let text = value.stringValue else {
            throw .protocolError("\(what): expected a string, found \(value.typeName)")
        }
        return text
    }

    /// Reads an int64 result: a decimal string, or an `<int>`.
    public static func int64(_ value: XMLRPCValue, _ what: String) throws(XenAPIError) -> Int64 {
        switch value {
        case .string(let text):
            guard let number = Int64(text.trimmingCharacters(in: .whitespaces)) else {
                throw .protocolError("\(what): \"\(text.prefix(40))\" is not an int64")
            }
            return number
        case .int(let number):
            return Int64(number)
        default:
            throw .protocolError("\(what): expected an int64, found \(value.typeName)")
        }
    }

    /// Reads a boolean result.
    public static func bool(_ value: XMLRPCValue, _ what: String) throws(XenAPIError) -> Bool {
        guard let flag = value.boolValue else {
            throw .protocolError("\(what): expected a boolean, found \(value.typeName)")
        }
        return flag
    }

    /// Reads a `(string → string) map` result.
    public static func stringMap(_ value: XMLRPCValue, _ what: String) throws(XenAPIError) -> [String: String] {
        guard let members = value.structMembers else {
            throw .protocolError("\(what): expected a struct, found \(value.typeName)")
        }
        var map: [String: String] = [:]
        for member in members {
            guard let text = member.value.stringValue else {
                throw .protocolError("\(what)[\(member.name)]: expected a string, found \(member.value.typeName)")
            }
            map[member.name] = text
        }
        return map
    }

    /// Reads a `ref set` result: an array of strings.
    public static func refs(_ value: XMLRPCValue, _ what: String) throws(XenAPIError) -> [String] {
        guard let elements = value.arrayValue else {
            throw .protocolError("\(what): expected an array, found \(value.typeName)")
        }
        var refs: [String] = []
        refs.reserveCapacity(elements.count)
        for element in elements { refs.append(try string(element, what)) }
        return refs
    }

    /// Reads a date-time result (`<dateTime.iso8601>`, or a string holding one).
    public static func dateTime(_ value: XMLRPCValue, _ what: String) throws(XenAPIError) -> String {
        switch value {
        case .dateTime(let text), .string(let text): return text
        default: throw .protocolError("\(what): expected a dateTime, found \(value.typeName)")
        }
    }
}
