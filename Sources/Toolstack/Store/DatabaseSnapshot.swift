import XenAPIWire

/// A consistent view of every object, read under the database lock: lookups and full records
/// (with reverse-reference sets such as `SR.VDIs` computed from the objects that point back).
public struct DatabaseSnapshot: Sendable {
    /// Objects by class, then by reference.
    var objects: [String: [String: ObjectRecord]]

    /// The object `ref` of class `cls`, or `HANDLE_INVALID`.
    public func get(_ cls: String, _ ref: String) throws(APIFailure) -> ObjectRecord {
        guard let r = objects[cls]?[ref] else { throw .handleInvalid(cls, ref) }
        return r
    }

    /// The object `ref` of class `cls`, if any.
    public func find(_ cls: String, _ ref: String) -> ObjectRecord? { objects[cls]?[ref] }

    /// Every object of `cls`, ordered by reference.
    public func all(_ cls: String) -> [ObjectRecord] {
        (objects[cls] ?? [:]).values.sorted { $0.ref < $1.ref }
    }

    /// The object of `cls` whose uuid is `uuid`, or `UUID_INVALID`.
    public func byUUID(_ cls: String, _ uuid: String) throws(APIFailure) -> ObjectRecord {
        guard let r = objects[cls]?.values.first(where: { $0.uuid == uuid }) else { throw .uuidInvalid(cls, uuid) }
        return r
    }

    /// Objects of `cls` whose field `field` is the string `value`.
    public func whereField(_ cls: String, _ field: String, is value: String) -> [ObjectRecord] {
        all(cls).filter { $0.fields[field]?.stringValue == value }
    }

    /// The record of `r` as the API returns it: every field in class order, reverse sets computed.
    public func value(of r: ObjectRecord) -> XMLRPCValue {
        guard let spec = DataModel.classes[r.cls] else { return .struct([]) }
        return .struct(spec.fields.map { f in XMLRPCMember(f.name, fieldValue(r, f)) })
    }

    /// One field of `r` (computed for reverse sets).
    public func fieldValue(_ r: ObjectRecord, _ f: FieldSpec) -> XMLRPCValue {
        if let reverse = f.reverse {
            return .array(whereField(reverse.cls, reverse.field, is: r.ref).map { .string($0.ref) })
        }
        return r.fields[f.name] ?? f.defaultValue
    }
}
