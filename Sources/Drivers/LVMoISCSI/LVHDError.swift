import SMCore

/// Failures of an LVHD container, with the Python SM's fault for each.
public enum LVHDError: Error, Equatable, Sendable, CustomStringConvertible, SMAPIFaultConvertible {
    /// The VG has too few free extents for `volume` (a new LV, an inflate, a journal).
    case outOfSpace(volume: String, neededBytes: UInt64, freeBytes: UInt64)
    /// The PV holds a VG that is not an LVHD SR's (`VG_XenStorage-<uuid>`).
    case notAnLVHDVolumeGroup(String)
    /// No LV of that name.
    case noVolume(String)
    /// A journal LV's contents are not a journal entry.
    case corruptJournal(String)
    /// A change of the VG (`what`) on a host that is not the SR master.
    case notMaster(String)
    /// The `MGT` volume holds no readable SR metadata (bad header, length or XML).
    case corruptMetadata(String)
    /// SR metadata that cannot be laid out: a field past its sector, or entries past the volume.
    case metadataTooLarge(String)

    /// A one-line explanation.
    public var description: String {
        switch self {
        case let .outOfSpace(v, n, f): return "volume group out of space for \(v): needs \(n) bytes, \(f) free"
        case let .notAnLVHDVolumeGroup(n): return "VG \(n) is not an LVHD SR's volume group"
        case let .noVolume(n): return "no logical volume \(n)"
        case let .corruptJournal(n): return "journal LV \(n) holds no valid entry"
        case let .notMaster(w): return "\(w): only the SR master changes the volume group"
        case let .corruptMetadata(why): return "SR metadata in \(LVHDLayout.managementVolume) is corrupt: \(why)"
        case let .metadataTooLarge(why): return "SR metadata does not fit: \(why)"
        }
    }

    /// `outOfSpace`: 180 `LVMProvisionAttach` when an attach inflates, else 44 `SRNoSpace` (as
    /// LVHDSR's `_ensureSpaceAvailable`); `noVolume`: 100 `LVMNoVolume`; metadata faults 181
    /// `MetadataError` (as `srmetadata`); others the command's own.
    public func fault(for command: SMAPICommand) -> SMAPIError {
        switch self {
        case .outOfSpace:
            let attach = command == .vdiAttach || command == .vdiActivate
            return SMAPIError(attach ? .LVMProvisionAttach : .SRNoSpace, opterr: description)
        case .noVolume: return SMAPIError(.LVMNoVolume, opterr: description)
        case .notMaster: return SMAPIError(.LVMMaster, opterr: description)
        case .corruptMetadata, .metadataTooLarge: return SMAPIError(.MetadataError, opterr: description)
        case .notAnLVHDVolumeGroup, .corruptJournal: return SMAPIError(command.failureCode, opterr: description)
        }
    }
}
