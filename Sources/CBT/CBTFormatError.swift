/// Why bytes are not a CBT log.
public enum CBTFormatError: Error, Equatable, CustomStringConvertible {
    /// The log is too short for its header or for the bitmap its size calls for, or a change
    /// would shrink it.
    case malformed(String)

    /// A one-line explanation.
    public var description: String {
        switch self {
        case let .malformed(why): return "malformed CBT log: \(why)"
        }
    }
}
