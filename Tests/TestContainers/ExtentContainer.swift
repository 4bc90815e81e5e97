import Foundation
import SMCore
import VHD
#if canImport(Glibc)
import Glibc
#endif

/// A container with LV semantics for tests: the volumes are runs of 4 MiB extents of one
/// preallocated file (or block device), named as LVHD names them (`VHD-<uuid>`), fixed in size
/// (a VHD cannot grow past its volume's end: the container inflates it first, and deflates a
/// read-only one), fully allocated (no holes, no discard), with tags and journals kept in the
/// group's crash-safe table (`ExtentGroup`).
public final class ExtentContainer: VolumeContainer, @unchecked Sendable {
    /// The volume group.
    public let group: ExtentGroup
    /// The engine's namespace: `/<group>/<volume>`.
    public let extents: ExtentStoreProvider
    /// LVs are inflated before a VHD in them grows and deflated when it becomes read-only.
    public let sizingPolicy = SizingPolicy.inflateBeforeGrowth
    /// `VHD-<uuid>`, as LVHDSR names them.
    public let naming = VolumeNaming.lvhd
    /// Every inflate and deflate, in order (`"inflate <volume> <bytes>"`, `"deflate …"`): what
    /// tests check the sizing policy by.
    public var sizingLog: [String] { logLock.withLock { log } }
    private let logLock = NSLock()
    // Guarded by `logLock`.
    private var log: [String] = []

    /// The container over the group formatted in `backing`.
    public init(backing: String) throws {
        group = try ExtentGroup(backing: backing)
        extents = ExtentStoreProvider(group: group)
    }

    /// The engine's namespace.
    public var provider: any StoreProvider { extents }

    /// Bytes per extent.
    public var extentSize: UInt64 { group.extentSize }

    /// `size` rounded up to whole extents.
    public func roundedToExtents(_ size: UInt64) -> UInt64 { group.extents(for: size) * extentSize }

    /// `/<group>/<name>`.
    public func path(of name: String) -> String { extents.path(of: name) }

    /// The volumes (journals are not volumes).
    public func list() throws -> [String] { group.table.volumes.keys.sorted() }

    /// Whether the volume exists.
    public func exists(_ name: String) -> Bool { group.table.volumes[name] != nil }

    /// A new volume of `size` bytes rounded up to extents.
    public func create(_ name: String, size: UInt64) throws -> any BlockStore { try extents.create(path(of: name), size: size) }

    /// Resizes the volume to whole extents.
    public func resize(_ name: String, to size: UInt64) throws { try group.resizeVolume(name, bytes: size) }

    /// Removes the volume.
    public func remove(_ name: String) throws { try group.removeVolume(name) }

    /// Renames the volume (one commit), replacing `to`.
    public func rename(_ name: String, to: String) throws { try group.renameVolume(name, to: to) }

    /// The volume's tags.
    public func tags(of name: String) throws -> Set<String> {
        guard let v = group.table.volumes[name] else { throw VHDError.io(path: name, operation: "tags", errno: ENOENT) }
        return Set(v.tags)
    }

    /// Replaces the volume's tags.
    public func setTags(_ tags: Set<String>, of name: String) throws { try group.setTags(tags, of: name) }

    /// The volume's size: its extents.
    public func utilisation(of name: String) throws -> UInt64 {
        guard let v = group.table.volumes[name] else { throw VHDError.io(path: name, operation: "stat", errno: ENOENT) }
        return v.extentCount * extentSize
    }

    /// The extents volumes may have (all but the table's) and those taken.
    public func capacity() throws -> (size: UInt64, used: UInt64) {
        let t = group.table
        let total = t.extentCount - 1
        return (total * extentSize, (total - t.freeExtents) * extentSize)
    }

    /// Free extents.
    public func freeSpace() throws -> UInt64 { group.table.freeExtents * extentSize }

    /// In extents: a writable leaf is inflated fully (its image and the estimate for its virtual
    /// size, whichever is more), a read-only node takes its image; less what the volume has.
    public func spaceToHold(imageBytes: UInt64, virtualSize: UInt64, in name: String?, writable: Bool) throws -> UInt64 {
        var bytes = imageBytes
        if writable {
            bytes = max(bytes, InflatedSize.estimate(virtualSize: virtualSize))
            if let name, let image = try? VHDImage(store: try open(name, writable: false), path: path(of: name), writable: false) {
                bytes = max(bytes, InflatedSize.of(image, virtualSize: virtualSize))
            }
        }
        let needed = roundedToExtents(bytes)
        let have = try name.map { try utilisation(of: $0) } ?? 0
        return needed > have ? needed - have : 0
    }

    /// Inflates the volume to what its VHD can reach at `virtualSize` bytes (rounded up to
    /// extents): the VHD's footer is written in the new last sector before the commit that adds
    /// the extents, so the volume has its footer at the end at every point.
    public func prepareForGrowth(_ name: String, virtualSize: UInt64) throws {
        let image = try VHDImage(store: try open(name, writable: true), path: path(of: name), writable: true)
        let target = roundedToExtents(max(InflatedSize.of(image, virtualSize: virtualSize),
                                          image.diskType == .fixed ? 0 : InflatedSize.estimate(virtualSize: virtualSize)))
        guard target > (try utilisation(of: name)) else { return }
        try group.resizeVolume(name, bytes: target, lastSector: image.footer.encoded())
        logLock.withLock { log.append("inflate \(name) \(target)") }
    }

    /// Deflates a read-only VHD's volume to its end of data and footer (rounded up to extents):
    /// the footer is written at the new end first, then the extents past it are given back.
    public func settleReadOnly(_ name: String) throws {
        let image = try VHDImage(store: try open(name, writable: true), path: path(of: name), writable: true)
        guard image.diskType != .fixed else { return }
        let target = roundedToExtents(image.endOfData + 512)
        guard target < image.store.size else { return }
        try image.store.write(image.footer.encoded(), at: target - 512)
        try image.store.sync()
        try group.resizeVolume(name, bytes: target)
        logLock.withLock { log.append("deflate \(name) \(target)") }
    }

    /// Table commits are synced as they happen; this syncs the data written through stores.
    public func sync() throws { try group.sync() }

    /// Stores a journal entry in extents of its own, named by the table.
    public func writeJournal(_ name: String, _ bytes: [UInt8]) throws { try group.writeJournal(name, bytes) }

    /// Every journal entry.
    public func journals() throws -> [String: [UInt8]] {
        var out: [String: [UInt8]] = [:]
        for name in group.table.journals.keys { out[name] = try group.journal(name) }
        return out
    }

    /// One journal entry, nil without one.
    public func journal(_ name: String) throws -> [UInt8]? { try group.journal(name) }

    /// Removes a journal entry.
    public func removeJournal(_ name: String) throws { try group.removeJournal(name) }
}
