/// Everything that can go wrong reading or writing LVM2 metadata, each naming what is wrong.
///
/// SMAPI codes are left to the driver: most cases here are either a corrupt SR (metadata) or a
/// caller's mistake, and which SMAPI error fits depends on the operation the driver was doing.
public enum LVMError: Error, Equatable, Sendable, CustomStringConvertible {
    /// No sector among 0-3 holds a valid `LABELONE` label.
    case noLabel
    /// A label was found but is unusable (bad crc, type, offsets).
    case invalidLabel(String)
    /// The PV header after the label is unusable.
    case invalidPVHeader(String)
    /// A metadata area header is unusable (crc, magic, version, start, size).
    case invalidMetadataArea(offset: UInt64, reason: String)
    /// The PV has no metadata area, or none holds committed metadata.
    case noMetadata
    /// A metadata text copy is unusable (location, crc, terminator).
    case invalidMetadataLocation(String)
    /// The metadata text does not follow the config syntax (line numbers are 1-based).
    case syntax(line: Int, reason: String)
    /// The metadata text parses but describes no valid VG (missing key, bad value, bad layout).
    case invalidMetadata(String)
    /// The metadata uses something this engine does not handle (striped, thin, raid segments...).
    case unsupported(String)
    /// A VG, LV or tag name is not valid for lvm2.
    case invalidName(String)
    /// An LV of that name already exists.
    case lvExists(String)
    /// No LV of that name exists.
    case lvNotFound(String)
    /// Not enough free extents.
    case insufficientSpace(needed: UInt64, free: UInt64)
    /// The text is larger than the metadata area can hold twice.
    case metadataTooLarge(size: Int, limit: Int)
    /// The committed metadata changed since it was read (another writer committed).
    case staleMetadata(expected: UInt64, found: UInt64)
    /// The LV is read-only and a write was attempted through it.
    case readOnlyLV(String)
    /// An argument is unusable (sizes, extent size, device too small).
    case invalidArgument(String)

    /// A one-line explanation.
    public var description: String {
        switch self {
        case .noLabel: return "no LVM2 label in sectors 0-3"
        case let .invalidLabel(r): return "LVM2 label invalid: \(r)"
        case let .invalidPVHeader(r): return "PV header invalid: \(r)"
        case let .invalidMetadataArea(off, r): return "metadata area at \(off) invalid: \(r)"
        case .noMetadata: return "no committed VG metadata on the PV"
        case let .invalidMetadataLocation(r): return "metadata location invalid: \(r)"
        case let .syntax(line, r): return "metadata text line \(line): \(r)"
        case let .invalidMetadata(r): return "VG metadata invalid: \(r)"
        case let .unsupported(r): return "unsupported: \(r)"
        case let .invalidName(r): return "invalid name: \(r)"
        case let .lvExists(n): return "LV \(n) already exists"
        case let .lvNotFound(n): return "LV \(n) not found"
        case let .insufficientSpace(n, f): return "needs \(n) extents, only \(f) free"
        case let .metadataTooLarge(s, l): return "metadata text of \(s) bytes exceeds the area's limit of \(l)"
        case let .staleMetadata(e, f): return "metadata changed underneath: expected seqno \(e), found \(f)"
        case let .readOnlyLV(n): return "LV \(n) is read-only"
        case let .invalidArgument(r): return "invalid argument: \(r)"
        }
    }
}
