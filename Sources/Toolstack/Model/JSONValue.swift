import Foundation
import XenAPIWire

/// Conversion between XML-RPC values and the objects `JSONSerialization` reads and writes.
public enum JSONValue {
    /// The JSON form of `value` (dates as their lexical string, binary as base64, nil as null).
    public static func encode(_ value: XMLRPCValue) -> Any {
        switch value {
        case .string(let s), .dateTime(let s): return s
        case .int(let n): return Int(n)
        case .boolean(let b): return b
        case .double(let d): return d
        case .base64(let data): return data.base64EncodedString()
        case .struct(let members):
            var out: [String: Any] = [:]
            for m in members { out[m.name] = encode(m.value) }
            return out
        case .array(let items): return items.map(encode)
        case .nil: return NSNull()
        }
    }

    /// The XML-RPC form of a JSON object (integers that fit become `int`, larger ones strings).
    public static func decode(_ json: Any) -> XMLRPCValue {
        switch json {
        case let s as String: return .string(s)
        case let b as Bool where type(of: json) == Bool.self: return .boolean(b)
        case let n as NSNumber:
            if String(cString: n.objCType) == "c" { return .boolean(n.boolValue) }
            let d = n.doubleValue
            if d == d.rounded(), !String(describing: n).contains(".") {
                let i = n.int64Value
                if let small = Int32(exactly: i) { return .int(small) }
                return .string(String(i))
            }
            return .double(d)
        case let b as Bool: return .boolean(b)
        case let a as [Any]: return .array(a.map(decode))
        case let o as [String: Any]:
            return .struct(o.keys.sorted().map { XMLRPCMember($0, decode(o[$0]!)) })
        default: return .nil
        }
    }
}
