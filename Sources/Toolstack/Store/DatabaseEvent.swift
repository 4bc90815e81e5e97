import XenAPIWire

/// One change to the database, as `event.from` reports it.
public struct DatabaseEvent: Sendable {
    /// The event's position in the stream (tokens count these).
    public var id: Int64
    /// The class of the object.
    public var cls: String
    /// The object's reference.
    public var ref: String
    /// `add`, `mod` or `del`.
    public var operation: String
    /// The record after the change (before it, for `del`).
    public var snapshot: ObjectRecord
    /// When it happened (xapi's date-time form).
    public var timestamp: String
}
