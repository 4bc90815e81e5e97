import LVM
import SMCore
import VHD
#if canImport(Glibc)
import Glibc
#endif

/// An LVHD SR's volumes: the LVs of VG `VG_XenStorage-<sr uuid>` on one PV (an iSCSI LUN, or any
/// `BlockStore`), laid out as the Python SM's LVHDSR lays them out: VHDs in `VHD-<uuid>` LVs of
/// whole 4 MiB extents, the `MGT` LV, journals in LVs of their own tagged `journaler`, base
/// copies read-only. Leaves are inflated to `calcSizeVHDLV` of their virtual size, read-only
/// nodes deflated to their data. Every change is one crash-safe VG commit.
public final class LVHDContainer: VolumeContainer, @unchecked Sendable {
    /// The VG.
    public let group: LVHDVolumeGroup
    /// The engine's namespace: `/dev/<vg>/<lv>`.
    public let volumes: LVHDStoreProvider
    /// The VG's name.
    public let vgName: String
    /// LVs are inflated before a VHD in them grows and deflated when it becomes read-only.
    public let sizingPolicy = SizingPolicy.inflateBeforeGrowth
    /// `VHD-<uuid>`, as LVHDSR names them.
    public let naming = VolumeNaming.lvhd
    /// New VHDs get metadata for 2 TiB (`lvhdutil.MSIZE`), as vhd-util's `-S` gives them on LVHD.
    public var fastResizeLimit: UInt64 { LVHDSize.preallocatedVirtualSize }
    /// `allocation=thin`: tells whether the leaf in an LV is active on no host (such leaves stay
    /// deflated); nil for a thick SR, whose leaves are always inflated.
    public var isInactiveLeaf: (@Sendable (String) -> Bool)?

    /// The container over the LVHD VG on `store`; `commitsAllowed` false on hosts that are not
    /// the SR master (they read the VG and change nothing).
    public init(store: any BlockStore, commitsAllowed: Bool = true) throws {
        group = try LVHDVolumeGroup(store: store, commitsAllowed: commitsAllowed)
        let vg = try group.current()
        guard LVHDLayout.srUUID(ofVG: vg.name) != nil else { throw LVHDError.notAnLVHDVolumeGroup(vg.name) }
        vgName = vg.name
        volumes = LVHDStoreProvider(group: group, vgName: vgName)
    }

    private init(group: LVHDVolumeGroup) throws {
        self.group = group
        vgName = try group.current().name
        volumes = LVHDStoreProvider(group: group, vgName: vgName)
    }

    /// Makes a new LVHD SR `sr` on `store` (`sr_create`): the PV, the VG, and the 4 MiB `MGT`
    /// LV (left zeroed: the SR metadata it holds for the Python SM is not written yet).
    public static func create(on store: any BlockStore, sr: String, overwrite: Bool = false) throws -> LVHDContainer {
        let group = try LVHDVolumeGroup(formatting: store, sr: sr, overwrite: overwrite)
        let container = try LVHDContainer(group: group)
        try group.update("create \(LVHDLayout.managementVolume)") { vg in
            try vg.createLV(name: LVHDLayout.managementVolume, extents: vg.extents(forBytes: LVHDLayout.managementVolumeSize))
            let mgt = try group.store(of: LVHDLayout.managementVolume, in: vg, writable: true)
            try mgt.write([UInt8](repeating: 0, count: Int(mgt.size)), at: 0)
            try mgt.sync()
        }
        return container
    }

    /// The engine's namespace.
    public var provider: any StoreProvider { volumes }

    /// Bytes per extent.
    public var extentSize: UInt64 { (try? group.current().extentBytes) ?? LVHDLayout.extentBytes }

    /// `/dev/<vg>/<name>`.
    public func path(of name: String) -> String { volumes.path(of: name) }

    /// The LV called `name` now, or `noVolume`.
    public func logicalVolume(_ name: String) throws -> LogicalVolume {
        guard let lv = try group.current().lv(name) else { throw LVHDError.noVolume(name) }
        return lv
    }

    /// Whether LV `name` is read-only (a base copy).
    public func isReadOnly(_ name: String) throws -> Bool { try logicalVolume(name).isReadOnly }

    /// Whether an LV is a volume (not `MGT`, not a journal).
    static func isVolume(_ lv: LogicalVolume) -> Bool {
        lv.name != LVHDLayout.managementVolume && !lv.tags.contains(LVHDLayout.journalTag) && !lv.tags.contains(LVHDLayout.vhdJournalTag)
    }

    /// The volumes: every LV but `MGT` and journals.
    public func list() throws -> [String] {
        try group.current().logicalVolumes.filter(Self.isVolume).map(\.name).sorted()
    }

    /// Whether the volume exists.
    public func exists(_ name: String) -> Bool { volumes.exists(path(of: name)) }

    /// A new LV of `size` bytes rounded up to extents (a CBT log's is tagged `cbtlog`).
    public func create(_ name: String, size: UInt64) throws -> any BlockStore {
        try volumes.createVolume(name, size: size, tags: naming.vdi(ofCBTLog: name) != nil ? [LVHDLayout.cbtLogTag] : [])
        return try open(name, writable: true)
    }

    /// Resizes the LV to whole extents (a grown LV's new last sector is zeroed before the commit).
    public func resize(_ name: String, to size: UInt64) throws {
        try resize(name, to: size, lastSector: nil)
    }

    /// Resizes LV `name` to hold `size` bytes; when it grows, its new last sector holds
    /// `lastSector` (zeros without one) before the commit that adds the extents. `readOnly`
    /// sets the LV's flag in the same commit.
    func resize(_ name: String, to size: UInt64, lastSector: [UInt8]?, readOnly: Bool? = nil) throws {
        // Nothing to change is no commit (a host that is not the master may ask).
        let now = try group.current()
        if let lv = now.lv(name), lv.extentCount == max(1, now.extents(forBytes: size)), readOnly == nil || lv.isReadOnly == readOnly {
            return
        }
        try group.update("resize \(name)") { vg in
            guard let lv = vg.lv(name) else { throw LVHDError.noVolume(name) }
            let extents = max(1, vg.extents(forBytes: size))
            if extents > lv.extentCount {
                try vg.resizeLV(name, extents: extents)
                let store = try group.store(of: name, in: vg, writable: true)
                try store.write(lastSector ?? [UInt8](repeating: 0, count: 512), at: store.size - 512)
                try store.sync()
            } else if extents < lv.extentCount {
                try vg.resizeLV(name, extents: extents)
            }
            if let readOnly, vg.lv(name)?.isReadOnly != readOnly { try vg.setReadOnly(readOnly, lv: name) }
        }
    }

    /// Removes the LV.
    public func remove(_ name: String) throws { try volumes.remove(path(of: name)) }

    /// Renames the LV (one commit), replacing `to`.
    public func rename(_ name: String, to: String) throws { try volumes.rename(path(of: name), to: path(of: to)) }

    /// The LV's tags.
    public func tags(of name: String) throws -> Set<String> { Set(try logicalVolume(name).tags) }

    /// Replaces the LV's tags (one commit).
    public func setTags(_ tags: Set<String>, of name: String) throws {
        try group.update("tag \(name)") { vg in
            guard let lv = vg.lv(name) else { throw LVHDError.noVolume(name) }
            for t in lv.tags where !tags.contains(t) { try vg.removeTag(t, fromLV: name) }
            for t in tags.sorted() { try vg.addTag(t, toLV: name) }
        }
    }

    /// The LV's size: its extents.
    public func utilisation(of name: String) throws -> UInt64 {
        let vg = try group.current()
        guard let lv = vg.lv(name) else { throw LVHDError.noVolume(name) }
        return vg.sizeInBytes(of: lv)
    }

    /// The VG's extents and those taken (by LVs, `MGT` and journals included).
    public func capacity() throws -> (size: UInt64, used: UInt64) {
        let vg = try group.current()
        return (vg.totalExtents * vg.extentBytes, (vg.totalExtents - vg.freeExtents) * vg.extentBytes)
    }

    /// The VG's free extents.
    public func freeSpace() throws -> UInt64 { try group.current().freeBytes }

    /// Commits are synced as they happen; this syncs what was written through LV stores.
    public func sync() throws { try group.store.sync() }
}
