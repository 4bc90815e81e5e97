/// The footer's disk type.
public enum DiskType: UInt32, Sendable, CustomStringConvertible {
    /// Raw data followed by a footer.
    case fixed = 2
    /// Sparse blocks through a BAT; unwritten sectors read as zeros.
    case dynamic = 3
    /// Sparse blocks over a parent; unwritten sectors read from the parent.
    case differencing = 4

    /// The name used in reports and JSON.
    public var description: String {
        switch self { case .fixed: "fixed"; case .dynamic: "dynamic"; case .differencing: "differencing" }
    }
}
