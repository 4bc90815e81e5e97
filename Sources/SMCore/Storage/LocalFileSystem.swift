import VHD
#if canImport(Glibc)
import Glibc
#endif

/// This host's file system, through POSIX calls: files created 0600, tags in the extended
/// attribute `user.swiftsm.tags`.
public final class LocalFileSystem: DirectoryFileSystem {
    /// POSIX files, created 0600 whatever the umask.
    public let provider: any StoreProvider = FileStoreProvider(mode: [.ownerReadWrite])
    /// Extended attribute holding a file's tags (one per line).
    static let tagsAttribute = "user.swiftsm.tags"

    // glibc's xattr calls, looked up at run time (Glibc's module map does not show sys/xattr.h).
    private typealias GetXattr = @convention(c) (UnsafePointer<CChar>, UnsafePointer<CChar>, UnsafeMutableRawPointer?, Int) -> Int
    private typealias SetXattr = @convention(c) (UnsafePointer<CChar>, UnsafePointer<CChar>, UnsafeRawPointer?, Int, Int32) -> Int32
    private typealias RemoveXattr = @convention(c) (UnsafePointer<CChar>, UnsafePointer<CChar>) -> Int32
    private static let getxattr = dlsym(nil, "getxattr").map { unsafeBitCast($0, to: GetXattr.self) }
    private static let setxattr = dlsym(nil, "setxattr").map { unsafeBitCast($0, to: SetXattr.self) }
    private static let removexattr = dlsym(nil, "removexattr").map { unsafeBitCast($0, to: RemoveXattr.self) }

    /// This host's file system.
    public init() {}

    /// stat(2) says directory.
    public func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// stat(2) size.
    public func fileSize(_ path: String) throws -> UInt64 {
        var st = stat()
        guard stat(path, &st) == 0 else { throw StorageError.system(path, "stat", errno) }
        return UInt64(st.st_size)
    }

    /// statvfs(3).
    public func statistics(_ directory: String) throws -> FileSystemStatistics {
        var s = statvfs()
        guard statvfs(directory, &s) == 0 else { throw StorageError.system(directory, "statvfs", errno) }
        let unit = UInt64(s.f_frsize)
        return FileSystemStatistics(size: UInt64(s.f_blocks) * unit, free: UInt64(s.f_bfree) * unit,
                                    available: UInt64(s.f_bavail) * unit)
    }

    /// fsync(2) of the directory.
    public func syncDirectory(_ directory: String) throws {
        let fd = Glibc.open(directory, O_RDONLY | O_DIRECTORY)
        guard fd >= 0 else { throw StorageError.system(directory, "open", errno) }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw StorageError.system(directory, "fsync", errno) }
    }

    /// chmod(2) 0700.
    public func restrict(_ directory: String) throws {
        guard chmod(directory, 0o700) == 0 else { throw StorageError.system(directory, "chmod", errno) }
    }

    /// The tags in the file's `user.swiftsm.tags` extended attribute (none when it has none).
    public func tags(_ path: String) throws -> Set<String> {
        var buffer = [UInt8](repeating: 0, count: 64 << 10)
        guard let getxattr = Self.getxattr else { throw StorageError.system(path, "getxattr", ENOSYS) }
        let n = getxattr(path, Self.tagsAttribute, &buffer, buffer.count)
        if n < 0 {
            if errno == ENODATA { return [] }
            throw StorageError.system(path, "getxattr", errno)
        }
        return Set(String(decoding: buffer[0..<n], as: UTF8.self).split(separator: "\n").map(String.init))
    }

    /// Replaces the file's tags (the attribute removed when there are none).
    public func setTags(_ tags: Set<String>, _ path: String) throws {
        guard let setxattr = Self.setxattr, let removexattr = Self.removexattr else { throw StorageError.system(path, "setxattr", ENOSYS) }
        guard !tags.isEmpty else {
            guard removexattr(path, Self.tagsAttribute) == 0 || errno == ENODATA else { throw StorageError.system(path, "removexattr", errno) }
            return
        }
        let bytes = Array(tags.sorted().joined(separator: "\n").utf8)
        guard setxattr(path, Self.tagsAttribute, bytes, bytes.count, 0) == 0 else { throw StorageError.system(path, "setxattr", errno) }
    }
}
