import VHD

/// How a container sizes its volumes.
public enum SizingPolicy: Sendable {
    /// Files: a VHD grows as it is written.
    case growsOnWrite
    /// Logical volumes: inflated before a VHD in them can grow, deflated when it becomes read-only.
    case inflateBeforeGrowth
}

/// A named set of volumes that hold VHDs: a directory of files for file SRs, a volume group for
/// LVM SRs. The VHD repository is written once against this protocol.
public protocol VolumeContainer: AnyObject {
    /// Where the VHD engine opens the volumes.
    var provider: any StoreProvider { get }
    /// How volumes are sized.
    var sizingPolicy: SizingPolicy { get }
    /// The engine path of volume `name`.
    func path(of name: String) -> String
    /// Names of every volume.
    func list() throws -> [String]
    /// Whether volume `name` exists.
    func exists(_ name: String) -> Bool
    /// Removes a volume.
    func remove(_ name: String) throws
    /// Renames a volume atomically, replacing `to` if it exists.
    func rename(_ name: String, to: String) throws
    /// Bytes volume `name` occupies.
    func utilisation(of name: String) throws -> UInt64
    /// Total and used bytes of the container.
    func capacity() throws -> (size: UInt64, used: UInt64)
    /// Bytes new and growing volumes can still take (files: what the file system still gives an
    /// ordinary writer; LVs: the volume group's free extents).
    func freeSpace() throws -> UInt64
    /// Makes a volume able to hold a VHD of `virtualSize` bytes (LVs inflate; files: nothing).
    func prepareForGrowth(_ name: String, virtualSize: UInt64) throws
    /// Shrinks a volume that became read-only to what its VHD uses (LVs deflate; files: nothing).
    func settleReadOnly(_ name: String) throws
    /// Flushes the container's metadata (directory entries, LVM metadata) to stable storage.
    func sync() throws
    /// Stores a journal entry durably (replacing one of the same name).
    func writeJournal(_ name: String, _ bytes: [UInt8]) throws
    /// Every journal entry, by name.
    func journals() throws -> [String: [UInt8]]
    /// Removes a journal entry (durably).
    func removeJournal(_ name: String) throws
}
