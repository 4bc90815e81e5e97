import VHD

/// How a container sizes its volumes.
public enum SizingPolicy: Sendable {
    /// Files: a VHD grows as it is written.
    case growsOnWrite
    /// Logical volumes: inflated before a VHD in them can grow, deflated when it becomes read-only.
    case inflateBeforeGrowth
}

/// A named set of volumes that hold VHDs: a directory of files for file SRs, a volume group for
/// LVM SRs. It is the only way any process (smdriver, the collector, the data path) reaches a
/// volume: a process is told (driver, SR, VDI) and rebuilds the container from the SR's plug.
/// The VHD repository and the collector are written once against this protocol.
public protocol VolumeContainer: AnyObject {
    /// The VHD engine's namespace over the volumes (`path(of:)` names a volume in it); chains
    /// and parent locators resolve within it.
    var provider: any StoreProvider { get }
    /// How volumes are sized.
    var sizingPolicy: SizingPolicy { get }
    /// How volumes are named.
    var naming: VolumeNaming { get }
    /// The virtual size new VHDs get metadata (BAT, batmap) for, as `vhd-util create -S` does:
    /// LVs preallocate it for 2 TiB so that growing a VDI never moves data; 0 sizes the metadata
    /// to the VHD.
    var fastResizeLimit: UInt64 { get }
    /// The engine path of volume `name` within `provider` (meaningful in this process only).
    func path(of name: String) -> String
    /// Names of every volume.
    func list() throws -> [String]
    /// Whether volume `name` exists.
    func exists(_ name: String) -> Bool
    /// Creates volume `name` able to hold `size` bytes (files: empty, growing on write; LVs:
    /// `size` rounded up to whole extents), failing if it exists.
    func create(_ name: String, size: UInt64) throws -> any BlockStore
    /// Opens volume `name`.
    func open(_ name: String, writable: Bool) throws -> any BlockStore
    /// Makes volume `name` `size` bytes long (LVs: rounded up to extents; files: truncated or
    /// extended).
    func resize(_ name: String, to size: UInt64) throws
    /// Removes a volume.
    func remove(_ name: String) throws
    /// Renames a volume atomically, replacing `to` if it exists.
    func rename(_ name: String, to: String) throws
    /// The tags of volume `name` (LV tags; extended attributes of a file).
    func tags(of name: String) throws -> Set<String>
    /// Replaces the tags of volume `name`.
    func setTags(_ tags: Set<String>, of name: String) throws
    /// Bytes volume `name` occupies.
    func utilisation(of name: String) throws -> UInt64
    /// Total and used bytes of the container.
    func capacity() throws -> (size: UInt64, used: UInt64)
    /// Bytes new and growing volumes can still take (files: what the file system still gives an
    /// ordinary writer; LVs: the volume group's free extents).
    func freeSpace() throws -> UInt64
    /// Free space that volume `name` (nil: a new volume) takes to hold a VHD of `virtualSize`
    /// bytes whose image will be `imageBytes` long; `writable`: the VHD is a leaf that will be
    /// written (LVs inflate it fully), else a read-only node sized to its data.
    func spaceToHold(imageBytes: UInt64, virtualSize: UInt64, in name: String?, writable: Bool) throws -> UInt64
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
    /// One journal entry, nil when there is none.
    func journal(_ name: String) throws -> [UInt8]?
    /// Removes a journal entry (durably); nothing when there is none.
    func removeJournal(_ name: String) throws
}

extension VolumeContainer {
    /// Metadata sized to each VHD.
    public var fastResizeLimit: UInt64 { 0 }

    /// Opens volume `name` through the engine's namespace.
    public func open(_ name: String, writable: Bool) throws -> any BlockStore {
        try provider.open(path(of: name), writable: writable)
    }
}
