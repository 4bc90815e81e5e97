import XenAPIWire

/// Changes being made under the database's write lock: reads see them, and they reach the
/// store and the event stream only when the whole transaction commits.
public struct DatabaseTransaction {
    /// The state before the transaction.
    let base: DatabaseSnapshot
    /// Changed objects by reference (nil = deleted), with their class.
    var changes: [String: (cls: String, record: ObjectRecord?)] = [:]

    /// The object `ref` of `cls` as changed so far, or `HANDLE_INVALID`.
    public func get(_ cls: String, _ ref: String) throws(APIFailure) -> ObjectRecord {
        guard let r = find(cls, ref) else { throw .handleInvalid(cls, ref) }
        return r
    }

    /// The object `ref` of `cls` as changed so far, if any.
    public func find(_ cls: String, _ ref: String) -> ObjectRecord? {
        if let change = changes[ref] { return change.cls == cls ? change.record : nil }
        return base.find(cls, ref)
    }

    /// Every object of `cls` as changed so far.
    public func all(_ cls: String) -> [ObjectRecord] {
        var byRef: [String: ObjectRecord] = [:]
        for r in base.all(cls) { byRef[r.ref] = r }
        for (ref, change) in changes where change.cls == cls { byRef[ref] = change.record }
        return byRef.values.sorted { $0.ref < $1.ref }
    }

    /// The object of `cls` with uuid `uuid`, or `UUID_INVALID`.
    public func byUUID(_ cls: String, _ uuid: String) throws(APIFailure) -> ObjectRecord {
        guard let r = all(cls).first(where: { $0.uuid == uuid }) else { throw .uuidInvalid(cls, uuid) }
        return r
    }

    /// Objects of `cls` whose `field` is the string `value`.
    public func whereField(_ cls: String, _ field: String, is value: String) -> [ObjectRecord] {
        all(cls).filter { $0.fields[field]?.stringValue == value }
    }

    /// Adds or replaces an object.
    public mutating func put(_ record: ObjectRecord) { changes[record.ref] = (record.cls, record) }

    /// Removes an object.
    public mutating func delete(_ cls: String, _ ref: String) { changes[ref] = (cls, nil) }

    /// Changes one object in place, or `HANDLE_INVALID`.
    public mutating func update(_ cls: String, _ ref: String, _ body: (inout ObjectRecord) throws -> Void) throws {
        var r = try get(cls, ref)
        try body(&r)
        put(r)
    }
}
