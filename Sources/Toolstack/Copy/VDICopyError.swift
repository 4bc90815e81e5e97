import LibNBD
/// Why a copy stopped.
public enum VDICopyError: Error, CustomStringConvertible {
    /// An NBD request failed.
    case nbd(NBDClientError)
    /// The source, base and destination do not fit together (sizes).
    case mismatch(String)
    /// The copy was cancelled.
    case cancelled

    /// What happened, for a task's error.
    public var description: String {
        switch self {
        case .nbd(let e): return e.description
        case .mismatch(let text): return text
        case .cancelled: return "cancelled"
        }
    }
}
