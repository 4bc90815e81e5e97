/// Why a collector step stopped.
public enum GCError: Error, Sendable, Equatable, CustomStringConvertible {
    /// An abort was asked for (or the process was told to terminate).
    case aborted
    /// The tree changed under the step (a concurrent SR operation); it is retried on the next pass.
    case changed(String)
    /// A leaf could not be merged within the pause budget; retried on a later run.
    case gaveUp(String)

    /// A readable description.
    public var description: String {
        switch self {
        case .aborted: "aborted"
        case let .changed(why): "the tree changed: \(why)"
        case let .gaveUp(why): "gave up: \(why)"
        }
    }
}
