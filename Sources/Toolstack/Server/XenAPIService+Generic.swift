import Foundation
import XenAPIWire

/// The messages every class has: records, lookups, getters, setters and map/set operations.
extension XenAPIService {
    /// Classes whose objects clients may create and destroy directly with a record.
    static let directlyCreatable: Set<String> = ["VM", "network", "secret"]

    func genericHandler(_ spec: ClassSpec, _ message: String) -> Handler? {
        let cls = spec.name
        switch message {
        case "get_record":
            return { [self] c in
                try c.arity(1)
                let ref = try c.string(0, "self")
                return try db.read { v in try v.value(of: v.get(cls, ref)) }
            }
        case "get_all":
            return { [self] c in try c.arity(0); return .array(db.read { $0.all(cls) }.map { .string($0.ref) }) }
        case "get_all_records":
            return { [self] c in
                try c.arity(0)
                return db.read { v in .struct(v.all(cls).map { XMLRPCMember($0.ref, v.value(of: $0)) }) }
            }
        case "get_all_records_where":
            return { [self] c in
                try c.arity(1)
                let query = try RecordQuery(try c.string(0, "expr"))
                return db.read { v in
                    .struct(v.all(cls).filter { query.matches($0, v) }.map { XMLRPCMember($0.ref, v.value(of: $0)) })
                }
            }
        case "get_by_uuid":
            return { [self] c in
                try c.arity(1)
                let uuid = try c.string(0, "uuid")
                return .string(try db.read { v in try v.byUUID(cls, uuid).ref })
            }
        case "get_by_name_label" where spec.hasNameLabel:
            return { [self] c in
                try c.arity(1)
                let label = try c.string(0, "label")
                return .array(db.read { $0.whereField(cls, "name_label", is: label) }.map { .string($0.ref) })
            }
        case "create" where Self.directlyCreatable.contains(cls):
            return { [self] c in
                try c.arity(1)
                let given = try c.record(0, "args")
                var record = ObjectRecord(spec)
                for (name, value) in given {
                    guard let f = spec.field(name), f.reverse == nil, name != "uuid" else { continue }
                    record.fields[name] = try f.kind.coerce(value, name: name)
                }
                try db.write { txn in txn.put(record) }
                return .string(record.ref)
            }
        case "destroy" where Self.directlyCreatable.contains(cls):
            return { [self] c in
                try c.arity(1)
                let ref = try c.string(0, "self")
                try db.write { txn in
                    let r = try txn.get(cls, ref)
                    if cls == "VM", r.bool("is_control_domain") { throw APIFailure("OPERATION_NOT_ALLOWED", "the control domain cannot be destroyed") }
                    if cls == "VM", !txn.whereField("VBD", "VM", is: ref).isEmpty {
                        throw APIFailure("OPERATION_NOT_ALLOWED", "the VM still has VBDs")
                    }
                    txn.delete(cls, ref)
                }
                return .string("")
            }
        default: break
        }
        if message.hasPrefix("get_"), let f = spec.field(String(message.dropFirst(4))) {
            return { [self] c in
                try c.arity(1)
                let ref = try c.string(0, "self")
                return try db.read { v in v.fieldValue(try v.get(cls, ref), f) }
            }
        }
        if message.hasPrefix("set_"), let f = spec.field(String(message.dropFirst(4))), f.isSettable {
            return { [self] c in
                try c.arity(2)
                let ref = try c.string(0, "self")
                let value = try c.value(1, f.kind, "value")
                try db.write { txn in try txn.update(cls, ref) { $0.fields[f.name] = value } }
                return .string("")
            }
        }
        for (prefix, adding) in [("add_to_", true), ("remove_from_", false)] where message.hasPrefix(prefix) {
            guard let f = spec.field(String(message.dropFirst(prefix.count))), f.kind == .map, f.isSettable else { continue }
            return { [self] c in
                try c.arity(adding ? 3 : 2)
                let ref = try c.string(0, "self")
                let key = try c.string(1, "key")
                let value = adding ? try c.string(2, "value") : ""
                try db.write { txn in
                    try txn.update(cls, ref) { r in
                        var m = r.map(f.name)
                        if adding {
                            guard m[key] == nil else { throw APIFailure("MAP_DUPLICATE_KEY", cls, f.name, ref, key) }
                            m[key] = value
                        } else {
                            m[key] = nil
                        }
                        r.setMap(f.name, m)
                    }
                }
                return .string("")
            }
        }
        for (prefix, adding) in [("add_", true), ("remove_", false)] where message.hasPrefix(prefix) {
            guard let f = spec.field(String(message.dropFirst(prefix.count))), f.kind == .set(.string), f.isSettable else { continue }
            return { [self] c in
                try c.arity(2)
                let ref = try c.string(0, "self")
                let value = try c.string(1, "value")
                try db.write { txn in
                    try txn.update(cls, ref) { r in
                        var items = r.strings(f.name).filter { $0 != value }
                        if adding { items.append(value) }
                        r.fields[f.name] = .array(items.map { .string($0) })
                    }
                }
                return .string("")
            }
        }
        return nil
    }
}

