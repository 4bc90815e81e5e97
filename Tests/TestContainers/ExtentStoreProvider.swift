import VHD
#if canImport(Glibc)
import Glibc
#endif

/// The VHD engine's namespace over an extent group: volume `name` is `/<group>/<name>`, so the
/// relative parent locators the engine writes (`./VHD-<uuid>`) resolve within the group. Rename
/// is one table commit; `create(path, size:)` allocates whole extents (plain `create` one).
public final class ExtentStoreProvider: StoreProvider {
    /// The group.
    public let group: ExtentGroup
    /// The group's name: the folder every volume is in.
    public let name: String

    /// The namespace of `group`.
    public init(group: ExtentGroup) {
        self.group = group
        name = group.table.group
    }

    /// `/<group>/<volume>`.
    public func path(of volume: String) -> String { "/" + name + "/" + volume }

    /// The volume a path names, nil outside the group.
    func volume(at path: String) -> String? {
        let p = StorePath.normalize(path)
        guard StorePath.directory(of: p) == "/" + name else { return nil }
        let v = StorePath.basename(p)
        return v.isEmpty ? nil : v
    }

    private func volume(_ path: String, _ operation: String) throws -> String {
        guard let v = volume(at: path) else { throw VHDError.io(path: path, operation: operation, errno: ENOENT) }
        return v
    }

    /// A store over the volume's extents.
    public func open(_ path: String, writable: Bool) throws -> any BlockStore {
        ExtentStore(path: path, group: group, mapping: try group.mapping(of: try volume(path, "open")), writable: writable)
    }

    /// A new one-extent volume.
    public func create(_ path: String) throws -> any BlockStore { try create(path, size: 0) }

    /// A new volume of `size` bytes rounded up to whole extents.
    public func create(_ path: String, size: UInt64) throws -> any BlockStore {
        try group.createVolume(try volume(path, "create"), bytes: size)
        return try open(path, writable: true)
    }

    /// Whether the volume exists.
    public func exists(_ path: String) -> Bool { volume(at: path).map { group.table.volumes[$0] != nil } ?? false }

    /// Removes the volume.
    public func remove(_ path: String) throws { try group.removeVolume(try volume(path, "remove")) }

    /// Renames within the group (one commit).
    public func rename(_ from: String, to: String) throws {
        try group.renameVolume(try volume(from, "rename"), to: try volume(to, "rename"))
    }

    /// The volume's creation or last resize.
    public func modificationTime(_ path: String) -> Int? { volume(at: path).flatMap { group.table.volumes[$0]?.modified } }

    /// The normalized path.
    public func canonical(_ path: String) -> String { StorePath.normalize(path) }

    /// The volumes, when `directory` is the group.
    public func list(_ directory: String) throws -> [String] {
        guard StorePath.normalize(directory) == "/" + name else { throw VHDError.io(path: directory, operation: "list", errno: ENOENT) }
        return group.table.volumes.keys.sorted()
    }
}
