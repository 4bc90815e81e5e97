import Foundation
import LVM
import VHD

/// The VG of one LVHD SR as one process sees it: the PV, the VG last read or committed, and a
/// lock that serialises this process's commits (one lock per PV uuid, shared by every instance
/// over that PV in the process). Before each read or change it asks the PV
/// whether another writer committed (`hasChanged()`: the metadata area headers only) and
/// re-reads the VG if so, so it never commits over a newer VG; a commit that still finds a newer
/// VG (`staleMetadata`) re-reads and applies the change again.
public final class LVHDVolumeGroup: @unchecked Sendable {
    /// The PV (the SR's LUN, or a file standing in for it).
    public let device: PVDevice
    private let lock: NSLock
    // Guarded by `lock`.
    private var cached: VolumeGroup

    /// Whether this process may commit (only the SR master changes the VG: other hosts read
    /// it and refuse changes with `LVHDError.notMaster`).
    public let commitsAllowed: Bool

    /// Opens the VG on the PV of `store`; `commitsAllowed` false on hosts that are not the SR master.
    public init(store: any BlockStore, commitsAllowed: Bool = true) throws {
        self.commitsAllowed = commitsAllowed
        device = try PVDevice(store: store)
        lock = PVLocks.shared.lock(for: device.uuid)
        cached = try device.read()
    }

    /// Formats `store` as an LVHD SR's PV holding an empty VG `VG_XenStorage-<sr>` (4 MiB extents,
    /// a 10 MiB metadata area), as `pvcreate` + `vgcreate` do for LVHDSR.create.
    public init(formatting store: any BlockStore, sr: String, overwrite: Bool = false) throws {
        let (dev, vg) = try PVDevice.create(on: store, vgName: LVHDLayout.vgName(sr: sr), extentSize: LVHDLayout.extentSectors,
                                            overwrite: overwrite, metadataSize: LVHDLayout.metadataAreaSize,
                                            description: "Created by SwiftSM (LVHD SR create)")
        commitsAllowed = true
        device = dev
        lock = PVLocks.shared.lock(for: dev.uuid)
        cached = vg
    }

    /// The PV's store.
    public var store: any BlockStore { device.store }

    /// The VG as committed now (re-read if another writer committed).
    public func current() throws -> VolumeGroup {
        try lock.withLock {
            try refresh()
            return cached
        }
    }

    /// Re-reads the VG if the metadata areas moved since this process last read or wrote them.
    private func refresh() throws {
        if try device.hasChanged() { cached = try device.read() }
    }

    /// Applies `change` to the current VG and commits the result (nothing when `change` leaves
    /// the VG as it was). `change` may write into extents it allocates (free in the committed
    /// VG) before the commit makes them part of an LV. Out-of-space becomes `LVHDError.outOfSpace`.
    @discardableResult
    public func update<T>(_ what: String, _ change: (inout VolumeGroup) throws -> T) throws -> T {
        guard commitsAllowed else { throw LVHDError.notMaster(what) }
        return try lock.withLock {
            var attempt = 0
            while true {
                try refresh()
                var vg = cached
                let result: T
                do { result = try change(&vg) } catch let LVMError.insufficientSpace(needed, free) {
                    throw LVHDError.outOfSpace(volume: what, neededBytes: needed * cached.extentBytes, freeBytes: free * cached.extentBytes)
                } catch let LVMError.lvNotFound(name) {
                    throw LVHDError.noVolume(name)
                }
                if vg == cached { return result }
                do {
                    cached = try device.commit(vg, description: "SwiftSM: \(what)")
                    return result
                } catch LVMError.staleMetadata where attempt < 3 {
                    attempt += 1
                    cached = try device.read()
                }
            }
        }
    }

    /// A store over LV `name` of `vg` (a VG value, perhaps not yet committed); `writable` opens a
    /// read-only LV for this process's own metadata writes (the flag governs activation).
    public func store(of name: String, in vg: VolumeGroup, writable: Bool) throws -> LogicalVolumeStore {
        var view = vg
        if writable, view.lv(name)?.isReadOnly == true { try view.setReadOnly(false, lv: name) }
        guard view.lv(name) != nil else { throw LVHDError.noVolume(name) }
        return try device.open(lv: name, in: view)
    }
}

/// One lock per PV uuid for the whole process, so that two containers over one PV (the
/// repository's and the collector's) never interleave their commits.
final class PVLocks: @unchecked Sendable {
    /// The process's table.
    static let shared = PVLocks()
    private let guardLock = NSLock()
    // Guarded by `guardLock`.
    private var locks: [LVMUUID: NSLock] = [:]

    /// The lock of PV `uuid`.
    func lock(for uuid: LVMUUID) -> NSLock {
        guardLock.withLock {
            if let l = locks[uuid] { return l }
            let l = NSLock()
            locks[uuid] = l
            return l
        }
    }
}
