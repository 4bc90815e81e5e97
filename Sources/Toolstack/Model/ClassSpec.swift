/// A XenAPI class: its name, its fields in record order, and the operations its objects allow.
public struct ClassSpec: Sendable {
    /// The class name as the API spells it (`VDI`, `pool`).
    public var name: String
    /// The fields in record order.
    public var fields: [FieldSpec]
    /// The operations `allowed_operations` lists when nothing is in progress.
    public var operations: [String]
    /// Whether the class has a `name_label` (and so `get_by_name_label`).
    public var hasNameLabel: Bool { field("name_label") != nil }

    /// A class.
    public init(_ name: String, operations: [String] = [], _ fields: [FieldSpec]) {
        self.name = name
        self.operations = operations
        self.fields = [FieldSpec("uuid", .string)] + fields
        index = Dictionary(uniqueKeysWithValues: self.fields.enumerated().map { ($1.name, $0) })
    }

    private var index: [String: Int]

    /// The field named `name`.
    public func field(_ name: String) -> FieldSpec? { index[name].map { fields[$0] } }
}
