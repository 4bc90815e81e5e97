import VHD

/// Sizes of the file system that holds a directory, in bytes.
public struct FileSystemStatistics: Sendable, Equatable {
    /// Every byte of the file system.
    public var size: UInt64
    /// Bytes not in use (the root reserve included).
    public var free: UInt64
    /// Bytes an ordinary writer can still take.
    public var available: UInt64

    /// Statistics of `size`, `free` and `available` bytes.
    public init(size: UInt64, free: UInt64, available: UInt64) {
        self.size = size
        self.free = free
        self.available = available
    }
}

/// The file operations a file SR's container needs beyond opening, creating, renaming and
/// removing files (which its `provider` does): this host's file system (`LocalFileSystem`) or
/// one reached over the network in user space (the NFS driver's). `DirectoryContainer` is
/// written once against it.
public protocol DirectoryFileSystem: AnyObject {
    /// Files as the engine opens them; paths are this file system's.
    var provider: any StoreProvider { get }
    /// Whether `path` is a directory.
    func isDirectory(_ path: String) -> Bool
    /// Bytes of the file at `path`.
    func fileSize(_ path: String) throws -> UInt64
    /// The sizes of the file system holding `directory`.
    func statistics(_ directory: String) throws -> FileSystemStatistics
    /// Makes the entries of `directory` (creations, renames, removals) durable.
    func syncDirectory(_ directory: String) throws
    /// Makes `directory` root's alone (mode 0700).
    func restrict(_ directory: String) throws
    /// The tags of the file at `path`.
    func tags(_ path: String) throws -> Set<String>
    /// Replaces the tags of the file at `path`.
    func setTags(_ tags: Set<String>, _ path: String) throws
}
