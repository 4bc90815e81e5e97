import LVM
import VHD
#if canImport(Glibc)
import Glibc
#endif

/// The VHD engine's namespace over an LVHD VG: LV `name` is `/dev/<vg>/<name>`, as the Python SM
/// opens it, so the relative parent locators the engine writes (`./VHD-<uuid>`) are the ones
/// vhd-util writes on LVHD. Stores are `LogicalVolumeStore`s: fixed-size block devices.
public final class LVHDStoreProvider: StoreProvider, @unchecked Sendable {
    /// The VG.
    public let group: LVHDVolumeGroup
    /// `/dev/<vg>`: the folder every LV is in.
    public let directory: String

    /// The namespace of `group`, whose VG is called `vgName`.
    public init(group: LVHDVolumeGroup, vgName: String) {
        self.group = group
        directory = "/dev/" + vgName
    }

    /// `/dev/<vg>/<lv>`.
    public func path(of lv: String) -> String { directory + "/" + lv }

    /// The LV a path names, nil outside the VG.
    public func volume(at path: String) -> String? {
        let p = StorePath.normalize(path)
        guard StorePath.directory(of: p) == directory else { return nil }
        let v = StorePath.basename(p)
        return v.isEmpty ? nil : v
    }

    private func volume(_ path: String, _ operation: String) throws -> String {
        guard let v = volume(at: path) else { throw VHDError.io(path: path, operation: operation, errno: ENOENT) }
        return v
    }

    /// A store over the LV's extents as committed now.
    public func open(_ path: String, writable: Bool) throws -> any BlockStore {
        let lv = try volume(path, "open")
        let vg = try group.current()
        guard vg.lv(lv) != nil else { throw VHDError.io(path: path, operation: "open", errno: ENOENT) }
        let store = try group.store(of: lv, in: vg, writable: writable)
        if let pv = group.store as? any OutageReportingStore & ConcurrentReadStore { return RemoteVolumeStore(volume: store, pv: pv) }
        return store
    }

    /// A new one-extent LV.
    public func create(_ path: String) throws -> any BlockStore { try create(path, size: 0) }

    /// A new LV of `size` bytes rounded up to extents (at least one), its last sector zeroed
    /// before the commit so no stale footer of an earlier LV is found there.
    public func create(_ path: String, size: UInt64) throws -> any BlockStore {
        let lv = try volume(path, "create")
        try createVolume(lv, size: size, tags: [])
        return try open(path, writable: true)
    }

    /// Creates LV `lv` of `size` bytes (rounded up to extents) with `tags`, in one commit.
    func createVolume(_ lv: String, size: UInt64, tags: [String]) throws {
        try group.update("create \(lv)") { vg in
            guard vg.lv(lv) == nil else { throw VHDError.io(path: path(of: lv), operation: "create", errno: EEXIST) }
            try vg.createLV(name: lv, extents: max(1, vg.extents(forBytes: size)), tags: tags)
            let store = try group.store(of: lv, in: vg, writable: true)
            try store.write([UInt8](repeating: 0, count: 512), at: store.size - 512)
            try store.sync()
        }
    }

    /// Whether the LV exists.
    public func exists(_ path: String) -> Bool {
        guard let lv = volume(at: path), let vg = try? group.current() else { return false }
        return vg.lv(lv) != nil
    }

    /// Removes the LV.
    public func remove(_ path: String) throws {
        let lv = try volume(path, "remove")
        try group.update("remove \(lv)") { vg in
            guard vg.lv(lv) != nil else { throw VHDError.io(path: path, operation: "remove", errno: ENOENT) }
            try vg.removeLV(lv)
        }
    }

    /// Renames within the VG, replacing an LV called `to`, in one commit.
    public func rename(_ from: String, to: String) throws {
        let a = try volume(from, "rename"), b = try volume(to, "rename")
        try group.update("rename \(a) to \(b)") { vg in
            guard vg.lv(a) != nil else { throw VHDError.io(path: from, operation: "rename", errno: ENOENT) }
            if a == b { return }
            if vg.lv(b) != nil { try vg.removeLV(b) }
            try vg.renameLV(a, to: b)
        }
    }

    /// The LV's creation time.
    public func modificationTime(_ path: String) -> Int? {
        guard let lv = volume(at: path), let vg = try? group.current(), let t = vg.lv(lv)?.creationTime else { return nil }
        return Int(t)
    }

    /// The normalized path.
    public func canonical(_ path: String) -> String { StorePath.normalize(path) }

    /// Every LV's name, when `directory` is the VG's.
    public func list(_ directory: String) throws -> [String] {
        guard StorePath.normalize(directory) == self.directory else { throw VHDError.io(path: directory, operation: "list", errno: ENOENT) }
        return try group.current().logicalVolumes.map(\.name).sorted()
    }
}
