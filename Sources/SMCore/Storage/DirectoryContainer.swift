import VHD
#if canImport(Glibc)
import Glibc
#endif

/// A file SR's container: the VHD files of one directory.
public final class DirectoryContainer: VolumeContainer {
    /// The directory.
    public let directory: String
    /// POSIX files.
    public let provider: any StoreProvider = FileStoreProvider()
    /// Files grow as they are written.
    public let sizingPolicy = SizingPolicy.growsOnWrite

    /// A container over `directory` (which must exist).
    public init(directory: String) throws {
        var st = stat()
        guard stat(directory, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else {
            throw StorageError.notADirectory(directory)
        }
        self.directory = directory
    }

    /// `<directory>/<name>`.
    public func path(of name: String) -> String { directory + "/" + name }

    /// File names in the directory.
    public func list() throws -> [String] { try provider.list(directory) }

    /// Whether the file exists.
    public func exists(_ name: String) -> Bool { provider.exists(path(of: name)) }

    /// Unlinks the file.
    public func remove(_ name: String) throws { try provider.remove(path(of: name)) }

    /// rename(2) within the directory.
    public func rename(_ name: String, to: String) throws { try provider.rename(path(of: name), to: path(of: to)) }

    /// Allocated bytes of the file (st_blocks), as the Python SM reports file utilisation by size.
    public func utilisation(of name: String) throws -> UInt64 {
        var st = stat()
        guard stat(path(of: name), &st) == 0 else { throw StorageError.system(path(of: name), "stat", errno) }
        return UInt64(st.st_size)
    }

    /// statvfs of the directory's filesystem.
    public func capacity() throws -> (size: UInt64, used: UInt64) {
        let s = try fileSystemStatistics()
        let size = UInt64(s.f_blocks) * UInt64(s.f_frsize)
        let free = UInt64(s.f_bfree) * UInt64(s.f_frsize)
        return (size, size - free)
    }

    /// statvfs of the directory's filesystem: the blocks available to an ordinary writer (the
    /// root reserve, if any, is not counted).
    public func freeSpace() throws -> UInt64 {
        let s = try fileSystemStatistics()
        return UInt64(s.f_bavail) * UInt64(s.f_frsize)
    }

    /// statvfs(3) of the directory.
    private func fileSystemStatistics() throws -> statvfs {
        var s = statvfs()
        guard statvfs(directory, &s) == 0 else { throw StorageError.system(directory, "statvfs", errno) }
        return s
    }

    /// Files grow on write: nothing to prepare.
    public func prepareForGrowth(_ name: String, virtualSize: UInt64) throws {}

    /// Files take only what they use: nothing to settle.
    public func settleReadOnly(_ name: String) throws {}

    /// fsync of the directory, so renames and new entries survive a crash.
    public func sync() throws {
        let fd = open(directory, O_RDONLY | O_DIRECTORY)
        guard fd >= 0 else { throw StorageError.system(directory, "open", errno) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw StorageError.system(directory, "fsync", errno) }
    }

    /// Journals are files `journal-<name>` in the directory.
    public func writeJournal(_ name: String, _ bytes: [UInt8]) throws { try writeFileAtomically("journal-" + name, bytes) }

    /// Every `journal-*` file.
    public func journals() throws -> [String: [UInt8]] {
        var out: [String: [UInt8]] = [:]
        for n in try list() where n.hasPrefix("journal-") { out[String(n.dropFirst(8))] = try readFile(n) }
        return out
    }

    /// Unlinks `journal-<name>` and syncs the directory.
    public func removeJournal(_ name: String) throws {
        if exists("journal-" + name) { try remove("journal-" + name) }
        try sync()
    }

    /// Writes a small file atomically (temp file, fsync, rename, directory fsync).
    public func writeFileAtomically(_ name: String, _ bytes: [UInt8]) throws {
        let tmp = path(of: "." + name + ".tmp")
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw StorageError.system(tmp, "open", errno) }
        let ok = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == bytes.count && fsync(fd) == 0
        close(fd)
        guard ok else { unlink(tmp); throw StorageError.system(tmp, "write", errno) }
        guard Glibc.rename(tmp, path(of: name)) == 0 else { throw StorageError.system(tmp, "rename", errno) }
        try sync()
    }

    /// Reads a small file.
    public func readFile(_ name: String) throws -> [UInt8] {
        let store = try FileStore(path: path(of: name), writable: false)
        return try store.read(count: Int(min(store.size, 1 << 20)), at: 0)
    }
}
