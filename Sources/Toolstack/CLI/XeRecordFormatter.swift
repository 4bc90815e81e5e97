import XenAPIWire

/// Records as `xe` prints them: fields renamed (`name_label` → `name-label`, references as
/// `<field>-uuid`), values in xe's forms (sets `a; b`, maps `k: v; k2: v2`), suffixes
/// ` ( RO)`/` ( RW)`/` (SRO)`/` (SRW)`/` (MRO)`/` (MRW)`, the colons lined up.
public struct XeRecordFormatter: Sendable {
    /// Resolves a reference to the uuid shown for it.
    public var uuidOf: @Sendable (String) -> String

    /// A formatter resolving references with `uuidOf`.
    public init(uuidOf: @escaping @Sendable (String) -> String) { self.uuidOf = uuidOf }

    /// One displayed field: name, value, suffix.
    public struct Field: Sendable {
        /// xe's name of the field.
        public var name: String
        /// The value as text.
        public var value: String
        /// `RO`, `RW`, `SRO`, `SRW`, `MRO` or `MRW`.
        public var suffix: String
    }

    /// xe's name for a XenAPI field.
    public static func xeName(_ f: FieldSpec) -> String {
        let base = f.name.lowercased().replacingOccurrences(of: "_", with: "-")
        if case .ref = f.kind { return base + "-uuid" }
        if f.reverse != nil, f.name.count > 1, f.name.dropLast().allSatisfy(\.isUppercase), f.name.hasSuffix("s") {
            return f.name.dropLast().lowercased() + "-uuids"   // VDIs → vdi-uuids
        }
        return base
    }

    /// The displayed fields of `record` (a full record struct) of class `spec`.
    public func fields(_ spec: ClassSpec, _ record: XMLRPCValue) -> [Field] {
        spec.fields.compactMap { f in
            guard let v = record[member: f.name] else { return nil }
            let writable = f.access == .readWrite
            let suffix: String
            switch f.kind {
            case .set: suffix = writable ? "SRW" : "SRO"
            case .map: suffix = writable ? "MRW" : "MRO"
            default: suffix = writable ? " RW" : " RO"
            }
            return Field(name: Self.xeName(f), value: text(f.kind, v), suffix: suffix)
        }
    }

    /// A value as xe prints it.
    public func text(_ kind: FieldKind, _ v: XMLRPCValue) -> String {
        switch (kind, v) {
        case (.ref, .string(let ref)): return ref == ObjectRef.null ? "<not in database>" : uuidOf(ref)
        case (.set(let element), .array(let items)): return items.map { text(element, $0) }.joined(separator: "; ")
        case (.map, .struct(let members)): return members.map { "\($0.name): \($0.value.stringValue ?? "")" }.joined(separator: "; ")
        case (.bool, .boolean(let b)): return b ? "true" : "false"
        case (.float, .double(let d)): return String(d)
        case (_, .string(let s)), (_, .dateTime(let s)): return s
        default: return "\(v)"
        }
    }

    /// The lines of one record, the colons lined up (the first key left-aligned, the rest right-aligned).
    public static func lines(_ fields: [Field]) -> [String] {
        let keys = fields.map { "\($0.name) (\($0.suffix))" }
        let width = (keys.map(\.count).max() ?? 0) + 4
        return zip(keys, fields).enumerated().map { i, pair in
            let (key, field) = pair
            let padding = String(repeating: " ", count: width - key.count)
            return (i == 0 ? key + padding : padding + key) + ": " + field.value
        }
    }
}
