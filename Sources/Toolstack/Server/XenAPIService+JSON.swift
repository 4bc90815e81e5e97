import Foundation
import XenAPIWire

/// Typing of JSON-RPC results: getters and records travel with their fields' types (ints as
/// numbers), as xapi's JSON-RPC answers.
extension XenAPIService {
    /// The type of `method`'s result when it is a field getter, else nil.
    func resultKind(_ method: String) -> FieldKind? {
        let name = method.hasPrefix("Async.") ? String(method.dropFirst(6)) : method
        let parts = name.split(separator: ".", maxSplits: 1).map(String.init)
        guard parts.count == 2, parts[1].hasPrefix("get_"), let spec = DataModel.spec(parts[0]) else { return nil }
        return spec.field(String(parts[1].dropFirst(4)))?.kind
    }

    /// The JSON form of `method`'s result `value`: typed by field for getters and records.
    func json(result value: XMLRPCValue, of method: String) -> Any {
        let parts = method.split(separator: ".", maxSplits: 1).map(String.init)
        if method == "VDI.get_nbd_info" || method == "Async.VDI.get_nbd_info" {
            // vdi_nbd_server_info records: the port is an int.
            return (value.arrayValue ?? []).map { info -> [String: Any] in
                var out: [String: Any] = [:]
                for m in info.structMembers ?? [] { out[m.name] = m.name == "port" ? Int(m.value.stringValue ?? "") ?? 0 : m.value.stringValue ?? "" }
                return out
            }
        }
        if parts.count == 2, let spec = DataModel.spec(parts[0]) {
            switch parts[1] {
            case "get_record": return Self.json(record: value, spec)
            case "get_all_records", "get_all_records_where":
                var out: [String: Any] = [:]
                for m in value.structMembers ?? [] { out[m.name] = Self.json(record: m.value, spec) }
                return out
            default: break
            }
        }
        return resultKind(method).map { $0.json(value) } ?? JSONValue.encode(value)
    }

    private static func json(record: XMLRPCValue, _ spec: ClassSpec) -> Any {
        var out: [String: Any] = [:]
        for m in record.structMembers ?? [] { out[m.name] = spec.field(m.name)?.kind.json(m.value) ?? JSONValue.encode(m.value) }
        return out
    }
}
