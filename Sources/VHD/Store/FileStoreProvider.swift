import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// Images as POSIX files; relative paths are taken from the current directory.
public final class FileStoreProvider: StoreProvider {
    /// The mode new files are created with (whatever the umask).
    public let mode: FilePermissions

    /// A provider over the local filesystem, creating files with `mode` (default 0644, as
    /// vhd-util does).
    public init(mode: FilePermissions = [.ownerReadWrite, .groupRead, .otherRead]) { self.mode = mode }

    /// Opens a file or block device.
    public func open(_ path: String, writable: Bool) throws -> any BlockStore {
        try FileStore(path: path, writable: writable)
    }

    /// Creates a new file.
    public func create(_ path: String) throws -> any BlockStore { try FileStore.create(path: path, mode: mode) }

    /// Whether the path exists.
    public func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    /// Unlinks the file.
    public func remove(_ path: String) throws {
        guard unlink(path) == 0 else { throw VHDError.io(path: path, operation: "unlink", errno: errno) }
    }

    /// rename(2).
    public func rename(_ from: String, to: String) throws {
        guard Glibc.rename(from, to) == 0 else { throw VHDError.io(path: from, operation: "rename", errno: errno) }
    }

    /// stat(2) mtime.
    public func modificationTime(_ path: String) -> Int? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        return Int(st.st_mtim.tv_sec)
    }

    /// realpath(3) when the file exists, else the normalized path.
    public func canonical(_ path: String) -> String {
        guard let p = realpath(path, nil) else { return StorePath.normalize(path) }
        defer { free(p) }
        return String(cString: p)
    }

    /// readdir(3) names, without "." and "..".
    public func list(_ directory: String) throws -> [String] {
        guard let d = opendir(directory) else { throw VHDError.io(path: directory, operation: "opendir", errno: errno) }
        defer { closedir(d) }
        var names: [String] = []
        while let e = readdir(d) {
            let name = withUnsafePointer(to: e.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names.sorted()
    }
}
