/// Failures of containers and the run directory.
public enum StorageError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A path that must be a directory is not.
    case notADirectory(String)
    /// A system call failed.
    case system(String, String, Int32)
    /// The SR is not attached on this host (no plug record).
    case notAttached(String)

    /// A one-line explanation.
    public var description: String {
        switch self {
        case let .notADirectory(p): return "\(p) is not a directory"
        case let .system(p, op, e): return "\(p): \(op) failed (errno \(e))"
        case let .notAttached(sr): return "SR \(sr) is not attached on this host"
        }
    }
}
