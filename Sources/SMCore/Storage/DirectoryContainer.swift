import VHD
#if canImport(Glibc)
import Glibc
#endif

/// A local file SR's container: the VHD files of one directory of this host's file system
/// (`<uuid>.vhd`, journals `journal-<name>`). The directory is root's alone (0700) and every
/// volume 0600, whatever the umask: VM disks are nobody else's to read.
public final class DirectoryContainer: VolumeContainer {
    /// The directory.
    public let directory: String
    /// POSIX files, created 0600.
    public let provider: any StoreProvider = FileStoreProvider(mode: [.ownerReadWrite])
    /// Files grow as they are written.
    public let sizingPolicy = SizingPolicy.growsOnWrite
    /// `<uuid>.vhd`, as FileSR names them.
    public let naming = VolumeNaming.file
    /// Extended attribute holding a volume's tags (one per line).
    static let tagsAttribute = "user.swiftsm.tags"

    // glibc's xattr calls, looked up at run time (Glibc's module map does not show sys/xattr.h).
    private typealias GetXattr = @convention(c) (UnsafePointer<CChar>, UnsafePointer<CChar>, UnsafeMutableRawPointer?, Int) -> Int
    private typealias SetXattr = @convention(c) (UnsafePointer<CChar>, UnsafePointer<CChar>, UnsafeRawPointer?, Int, Int32) -> Int32
    private typealias RemoveXattr = @convention(c) (UnsafePointer<CChar>, UnsafePointer<CChar>) -> Int32
    private static let getxattr = dlsym(nil, "getxattr").map { unsafeBitCast($0, to: GetXattr.self) }
    private static let setxattr = dlsym(nil, "setxattr").map { unsafeBitCast($0, to: SetXattr.self) }
    private static let removexattr = dlsym(nil, "removexattr").map { unsafeBitCast($0, to: RemoveXattr.self) }

    /// A container over `directory` (which must exist).
    public init(directory: String) throws {
        var st = stat()
        guard stat(directory, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else {
            throw StorageError.notADirectory(directory)
        }
        self.directory = directory
    }

    /// Makes `directory` (an SR's) root's alone: mode 0700.
    public static func restrict(_ directory: String) throws {
        guard chmod(directory, 0o700) == 0 else { throw StorageError.system(directory, "chmod", errno) }
    }

    /// `<directory>/<name>`.
    public func path(of name: String) -> String { directory + "/" + name }

    /// File names in the directory.
    public func list() throws -> [String] { try provider.list(directory) }

    /// Whether the file exists.
    public func exists(_ name: String) -> Bool { provider.exists(path(of: name)) }

    /// A new empty file (it grows as the VHD is written; `size` is not reserved).
    public func create(_ name: String, size: UInt64) throws -> any BlockStore { try provider.create(path(of: name)) }

    /// Truncates or extends the file.
    public func resize(_ name: String, to size: UInt64) throws { try open(name, writable: true).resize(to: size) }

    /// Unlinks the file.
    public func remove(_ name: String) throws { try provider.remove(path(of: name)) }

    /// rename(2) within the directory.
    public func rename(_ name: String, to: String) throws { try provider.rename(path(of: name), to: path(of: to)) }

    /// The tags in the file's `user.swiftsm.tags` extended attribute (none when it has none).
    public func tags(of name: String) throws -> Set<String> {
        let p = path(of: name)
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        guard let getxattr = Self.getxattr else { throw StorageError.system(p, "getxattr", ENOSYS) }
        let n = getxattr(p, Self.tagsAttribute, &buffer, buffer.count)
        if n < 0 {
            if errno == ENODATA { return [] }
            throw StorageError.system(p, "getxattr", errno)
        }
        return Set(String(decoding: buffer[0..<n], as: UTF8.self).split(separator: "\n").map(String.init))
    }

    /// Replaces the file's tags (the attribute removed when there are none).
    public func setTags(_ tags: Set<String>, of name: String) throws {
        let p = path(of: name)
        guard let setxattr = Self.setxattr, let removexattr = Self.removexattr else { throw StorageError.system(p, "setxattr", ENOSYS) }
        guard !tags.isEmpty else {
            guard removexattr(p, Self.tagsAttribute) == 0 || errno == ENODATA else { throw StorageError.system(p, "removexattr", errno) }
            return
        }
        let bytes = Array(tags.sorted().joined(separator: "\n").utf8)
        guard setxattr(p, Self.tagsAttribute, bytes, bytes.count, 0) == 0 else { throw StorageError.system(p, "setxattr", errno) }
    }

    /// The file's size, as the Python SM reports file utilisation.
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

    /// A file takes what its image grows by: `imageBytes` less its current size.
    public func spaceToHold(imageBytes: UInt64, virtualSize: UInt64, in name: String?, writable: Bool) throws -> UInt64 {
        guard let name else { return imageBytes }
        let current = try utilisation(of: name)
        return imageBytes > current ? imageBytes - current : 0
    }

    /// Files grow on write: nothing to prepare.
    public func prepareForGrowth(_ name: String, virtualSize: UInt64) throws {}

    /// Files take only what they use: nothing to settle.
    public func settleReadOnly(_ name: String) throws {}

    /// fsync of the directory, so renames and new entries survive a crash.
    public func sync() throws {
        let fd = Glibc.open(directory, O_RDONLY | O_DIRECTORY)
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

    /// The file `journal-<name>`, nil when absent.
    public func journal(_ name: String) throws -> [UInt8]? {
        exists("journal-" + name) ? try readFile("journal-" + name) : nil
    }

    /// Unlinks `journal-<name>` and syncs the directory.
    public func removeJournal(_ name: String) throws {
        if exists("journal-" + name) { try remove("journal-" + name) }
        try sync()
    }

    /// Writes a small file atomically (temp file 0600, fsync, rename, directory fsync).
    public func writeFileAtomically(_ name: String, _ bytes: [UInt8]) throws {
        let tmp = path(of: "." + name + ".tmp")
        let fd = Glibc.open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
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
