/// One range of an NBD export's `base:allocation` map.
public struct NBDExtent: Sendable, Equatable {
    /// Its first byte.
    public var offset: Int64
    /// Its length in bytes.
    public var length: Int64
    /// Whether the range is a hole (not allocated: reads come from nowhere).
    public var hole: Bool
    /// Whether the range reads as zeros.
    public var zero: Bool
}
