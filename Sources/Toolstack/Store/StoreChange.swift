/// One object as another daemon left it: its record, or nil when it was deleted.
public struct StoreChange: Sendable {
    /// The object's class.
    public var cls: String
    /// The object's reference.
    public var ref: String
    /// The record now, or nil when deleted.
    public var record: ObjectRecord?

    /// A change of `ref` of `cls` to `record` (nil: deleted).
    public init(cls: String, ref: String, record: ObjectRecord?) {
        self.cls = cls
        self.ref = ref
        self.record = record
    }
}
