/// One range of a copy plan and what the copier does with it.
public struct CopyChunk: Sendable, Equatable {
    /// What is done with a range.
    public enum Action: Sendable, Equatable {
        /// Read the source and write it (skipped when it reads as zeros and the destination is already zero there).
        case copy
        /// Make the destination read zeros (the source has no data there, the destination has).
        case zero
        /// Read the source and the base; write the source where they differ.
        case delta
    }

    /// Its first byte.
    public var offset: Int64
    /// Its length in bytes.
    public var length: Int64
    /// What is done with it.
    public var action: Action
    /// Whether the destination reads zeros here before the copy (an all-zero source block need not be written).
    public var destinationZero: Bool
}
