/// Why a collector step stopped.
public enum GCError: Error, Sendable, Equatable, CustomStringConvertible {
    /// An abort was asked for (or the process was told to terminate).
    case aborted
    /// The tree changed under the step (a concurrent SR operation); it is retried on the next pass.
    case changed(String)
    /// A leaf could not be merged within the pause budget; retried on a later run.
    case gaveUp(String)
    /// The SR lacks the room a merge needs (`needed` bytes plus `margin` left free, `free` bytes
    /// free); skipped, retried on a later run.
    case noSpace(needed: UInt64, margin: UInt64, free: UInt64)

    /// A readable description.
    public var description: String {
        switch self {
        case .aborted: "aborted"
        case let .changed(why): "the tree changed: \(why)"
        case let .gaveUp(why): "gave up: \(why)"
        case let .noSpace(needed, margin, free):
            "not enough free space: the merge needs \(Self.bytes(needed)) and \(Self.bytes(margin)) must stay free, "
                + "but the SR has \(Self.bytes(free)) free"
        }
    }

    /// `n bytes (x.y MiB)`: exact, and readable.
    static func bytes(_ n: UInt64) -> String { "\(n) bytes (\(ByteCount.describe(n)))" }
}
