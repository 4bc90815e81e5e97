import CBT

/// Why a changed-block-tracking operation failed, each with the SMAPIv1 fault it maps to
/// (457–460 of the error catalogue, 66 `VDIType` for a VDI that may not have tracking).
public enum CBTError: Error, Equatable, CustomStringConvertible {
    /// A log that cannot be parsed (short, or a size that does not fit it).
    case malformed(String)
    /// The log of a VDI is missing.
    case noLog(String)
    /// A log on the path between two VDIs is marked inconsistent (a crash while it was active):
    /// its bitmap may miss writes.
    case inconsistent(String)
    /// The two VDIs are not linked by a chain of logs (or are the same VDI).
    case unrelated(String, String)
    /// The logs along the chain disagree on sizes.
    case sizeMismatch(String)
    /// The VDI cannot have tracking (a snapshot, a base copy, not a VHD).
    case notAllowed(String)
    /// Enabling tracking failed.
    case enableFailed(String)
    /// Disabling tracking failed.
    case disableFailed(String)

    /// A one-line explanation.
    public var description: String {
        switch self {
        case let .malformed(why): return "malformed CBT log: \(why)"
        case let .noLog(vdi): return "VDI \(vdi) has no CBT log"
        case let .inconsistent(vdi): return "the CBT log of VDI \(vdi) is inconsistent (a full backup is needed)"
        case let .unrelated(a, b): return "VDIs \(a) and \(b) are not on one CBT log chain"
        case let .sizeMismatch(why): return "inconsistent bitmap sizes: \(why)"
        case let .notAllowed(why): return why
        case let .enableFailed(why): return why
        case let .disableFailed(why): return why
        }
    }

    /// The SMAPIv1 error code.
    public var code: SMErrorCode {
        switch self {
        case .malformed, .inconsistent, .sizeMismatch: return .CBTMetadataInconsistent
        case .noLog, .unrelated: return .CBTChangedBlocksError
        case .notAllowed: return .VDIType
        case .enableFailed: return .CBTActivateFailed
        case .disableFailed: return .CBTDeactivateFailed
        }
    }
}
