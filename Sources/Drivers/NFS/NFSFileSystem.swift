import CNFS
import Foundation
import SMCore
import VHD

/// An NFS export as the file system of a `DirectoryContainer`. NFSv3 has no extended
/// attributes, so files carry no tags (file SRs use none); the protocol makes a server commit
/// CREATE, REMOVE and RENAME to stable storage before it answers, so a directory needs no sync.
public final class NFSFileSystem: DirectoryFileSystem, @unchecked Sendable {
    /// The export.
    public let mount: NFSMount
    /// Files on it.
    public let nfs: NFSStoreProvider

    /// The file system of `mount`.
    public init(mount: NFSMount) {
        self.mount = mount
        nfs = NFSStoreProvider(mount: mount)
    }

    /// The files, as the engine opens them.
    public var provider: any StoreProvider { nfs }

    /// The attributes say directory.
    public func isDirectory(_ path: String) -> Bool {
        guard let st = try? nfs.stat(path) else { return false }
        return (st.nfs_mode & 0o170000) == 0o040000
    }

    /// The file's size.
    public func fileSize(_ path: String) throws -> UInt64 { try nfs.stat(path).nfs_size }

    /// FSSTAT of the export.
    public func statistics(_ directory: String) throws -> FileSystemStatistics { try mount.statistics(directory) }

    /// Nothing to do: NFSv3 servers commit directory changes before they answer.
    public func syncDirectory(_ directory: String) throws {}

    /// SETATTR mode 0700.
    public func restrict(_ directory: String) throws {
        try mount.perform("chmod \(directory)") { c in
            try c.with("chmod") { ctx in try c.check(nfs_chmod(ctx, directory, 0o700), "chmod", directory) }
        }
    }

    /// Files on NFS carry no tags.
    public func tags(_ path: String) throws -> Set<String> { [] }

    /// NFSv3 cannot keep tags: refused unless there are none to keep.
    public func setTags(_ tags: Set<String>, _ path: String) throws {
        guard tags.isEmpty else { throw StorageError.system(path, "setxattr (NFSv3 has no extended attributes)", ENOTSUP) }
    }

    /// MKDIR with mode 0700.
    public func makeDirectory(_ path: String) throws {
        try mount.perform("mkdir \(path)", idempotent: false) { c in
            try c.with("mkdir") { ctx in try c.check(nfs_mkdir2(ctx, path, 0o700), "mkdir", path) }
        }
    }

    /// RMDIR.
    public func removeDirectory(_ path: String) throws {
        try mount.perform("rmdir \(path)", idempotent: false) { c in
            try c.with("rmdir") { ctx in try c.check(nfs_rmdir(ctx, path), "rmdir", path) }
        }
    }
}
