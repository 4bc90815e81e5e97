import VHD

/// Why a VDI operation was refused, with the SMAPIv1 fault each maps to.
public enum RepositoryError: Error, Equatable, Sendable, CustomStringConvertible {
    /// No VHD for this uuid.
    case missing(String)
    /// A VHD for this uuid already exists.
    case exists(String)
    /// Not a uuid (path traversal, stray names).
    case invalidName(String)
    /// Size out of range (0 or over 2040 GiB).
    case invalidSize(UInt64)
    /// Shrinking is not supported.
    case shrink(String)
    /// The VDI is a hidden base copy.
    case hidden(String)
    /// The VDI has children.
    case hasChildren(String)
    /// The chain would exceed 30.
    case chainTooLong(String)
    /// A volume or journal cannot be read.
    case corruptVolume(String, String)

    /// A one-line explanation.
    public var description: String {
        switch self {
        case let .missing(u): return "VDI \(u) not found"
        case let .exists(u): return "VDI \(u) already exists"
        case let .invalidName(u): return "\(u) is not a VDI uuid"
        case let .invalidSize(s): return "size \(s) outside 1 byte..2040 GiB"
        case let .shrink(u): return "VDI \(u) cannot shrink"
        case let .hidden(u): return "VDI \(u) is a hidden base copy"
        case let .hasChildren(u): return "VDI \(u) has children"
        case let .chainTooLong(u): return "chain of VDI \(u) is \(VHDRepository.maxChainDepth) deep"
        case let .corruptVolume(n, why): return "\(n): \(why)"
        }
    }
}
