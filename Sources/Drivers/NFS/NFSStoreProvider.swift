import CNFS
import Foundation
import VHD

/// Images as files on an NFS export, by their paths within it (`/<sr>/<uuid>.vhd`): the engine's
/// namespace for an NFS SR. New files are 0600.
public final class NFSStoreProvider: StoreProvider, @unchecked Sendable {
    /// The export.
    public let mount: NFSMount

    /// A provider over `mount`.
    public init(mount: NFSMount) { self.mount = mount }

    /// Opens an existing file.
    public func open(_ path: String, writable: Bool) throws -> any BlockStore {
        try NFSStore(mount: mount, path: path, writable: writable)
    }

    /// Creates a new empty file, 0600 (failing if it exists).
    public func create(_ path: String) throws -> any BlockStore {
        try mount.perform("create \(path)", idempotent: false) { c in
            try c.with("create") { ctx in
                var fh: OpaquePointer?
                try c.check(nfs_create(ctx, path, O_CREAT | O_EXCL | O_RDWR, 0o600, &fh), "create", path)
                if let fh { nfs_close(ctx, fh) }
            }
        }
        return try NFSStore(mount: mount, path: path, writable: true)
    }

    /// Whether a LOOKUP finds `path`.
    public func exists(_ path: String) -> Bool { (try? stat(path)) != nil }

    /// The attributes of `path`.
    func stat(_ path: String) throws -> nfs_stat_64 {
        try mount.perform("stat \(path)") { c in
            try c.with("stat") { ctx in
                var st = nfs_stat_64()
                try c.check(nfs_stat64(ctx, path, &st), "stat", path)
                return st
            }
        }
    }

    /// REMOVE.
    public func remove(_ path: String) throws {
        try mount.perform("remove \(path)", idempotent: false) { c in
            try c.with("remove") { ctx in try c.check(nfs_unlink(ctx, path), "remove", path) }
        }
    }

    /// RENAME (replaces `to` atomically, as rename(2)).
    public func rename(_ from: String, to: String) throws {
        try mount.perform("rename \(from)", idempotent: false) { c in
            try c.with("rename") { ctx in try c.check(nfs_rename(ctx, from, to), "rename", from) }
        }
    }

    /// The server's mtime of `path`.
    public func modificationTime(_ path: String) -> Int? { (try? stat(path)).map { Int($0.nfs_mtime) } }

    /// The normalized path (the export has no symlinks the engine follows).
    public func canonical(_ path: String) -> String { StorePath.normalize(path) }

    /// READDIR names, without "." and "..", sorted.
    public func list(_ directory: String) throws -> [String] {
        try mount.perform("list \(directory)") { c in
            try c.with("readdir") { ctx in
                var dir: OpaquePointer?
                try c.check(nfs_opendir(ctx, directory, &dir), "opendir", directory)
                guard let dir else { return [] }
                defer { nfs_closedir(ctx, dir) }
                var names: [String] = []
                while let e = nfs_readdir(ctx, dir) {
                    let name = String(cString: e.pointee.name)
                    if name != "." && name != ".." { names.append(name) }
                }
                return names.sorted()
            }
        }
    }
}
