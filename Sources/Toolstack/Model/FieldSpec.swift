import XenAPIWire

/// One field of a XenAPI class: its name, type, who may set it, and where its value comes from.
public struct FieldSpec: Sendable, Hashable {
    /// Who may change a field.
    public enum Access: Sendable, Hashable {
        /// Read-only: no setter.
        case readOnly
        /// Read-write: a public setter (`RW` in `xe`).
        case readWrite
        /// Set by the toolstack and by storage plugins through `set_<field>` (shown `RO` in `xe`).
        case internalWrite
    }

    /// The XenAPI field name (`name_label`).
    public var name: String
    /// The field's type.
    public var kind: FieldKind
    /// Who may change it.
    public var access: Access
    /// For a set of references computed from other objects: the class and field pointing back here.
    public var reverse: (cls: String, field: String)?
    /// The value a new record gets when the field is not given.
    public var defaultValue: XMLRPCValue

    /// A stored field.
    public init(_ name: String, _ kind: FieldKind, _ access: Access = .readOnly, default value: XMLRPCValue? = nil) {
        self.name = name
        self.kind = kind
        self.access = access
        self.reverse = nil
        self.defaultValue = value ?? kind.defaultValue
    }

    /// A set of references computed on read: the objects of `cls` whose `field` names this one.
    public static func reverse(_ name: String, _ cls: String, _ field: String) -> FieldSpec {
        var spec = FieldSpec(name, .set(.ref(cls)))
        spec.reverse = (cls, field)
        return spec
    }

    /// Whether `set_<name>` exists.
    public var isSettable: Bool { access != .readOnly }

    /// Equal specs: same name, type, access, reverse link and default.
    public static func == (a: FieldSpec, b: FieldSpec) -> Bool {
        a.name == b.name && a.kind == b.kind && a.access == b.access && a.reverse?.cls == b.reverse?.cls
            && a.reverse?.field == b.reverse?.field && a.defaultValue == b.defaultValue
    }

    /// Hashes the name.
    public func hash(into hasher: inout Hasher) { hasher.combine(name) }
}
