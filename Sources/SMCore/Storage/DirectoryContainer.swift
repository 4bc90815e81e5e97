import VHD

/// A file SR's container: the VHD files of one directory (`<uuid>.vhd`, journals
/// `journal-<name>`), on this host's file system or on one reached over the network in user
/// space (NFS): the same container either way, over a `DirectoryFileSystem`. The directory is
/// root's alone (0700) and every volume 0600, whatever the umask: VM disks are nobody else's to
/// read.
public final class DirectoryContainer: VolumeContainer {
    /// The directory (a path of `fileSystem`).
    public let directory: String
    /// The file system holding it.
    public let fileSystem: any DirectoryFileSystem
    /// Files grow as they are written.
    public let sizingPolicy = SizingPolicy.growsOnWrite
    /// `<uuid>.vhd`, as FileSR names them.
    public let naming = VolumeNaming.file

    /// The files, as the engine opens them.
    public var provider: any StoreProvider { fileSystem.provider }

    /// A container over `directory` (which must exist) of `fileSystem` (default: this host's).
    public init(directory: String, fileSystem: any DirectoryFileSystem = LocalFileSystem()) throws {
        guard fileSystem.isDirectory(directory) else { throw StorageError.notADirectory(directory) }
        self.directory = directory
        self.fileSystem = fileSystem
    }

    /// Makes local `directory` (an SR's) root's alone: mode 0700.
    public static func restrict(_ directory: String) throws { try LocalFileSystem().restrict(directory) }

    /// `<directory>/<name>`.
    public func path(of name: String) -> String { directory.hasSuffix("/") ? directory + name : directory + "/" + name }

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

    /// Renames within the directory (replacing `to`).
    public func rename(_ name: String, to: String) throws { try provider.rename(path(of: name), to: path(of: to)) }

    /// The file's tags, as the file system keeps them.
    public func tags(of name: String) throws -> Set<String> { try fileSystem.tags(path(of: name)) }

    /// Replaces the file's tags.
    public func setTags(_ tags: Set<String>, of name: String) throws { try fileSystem.setTags(tags, path(of: name)) }

    /// The file's size, as the Python SM reports file utilisation.
    public func utilisation(of name: String) throws -> UInt64 { try fileSystem.fileSize(path(of: name)) }

    /// The directory's file system: its size and the bytes in use.
    public func capacity() throws -> (size: UInt64, used: UInt64) {
        let s = try fileSystem.statistics(directory)
        return (s.size, s.size - min(s.free, s.size))
    }

    /// The blocks of the directory's file system available to an ordinary writer (the root
    /// reserve, if any, is not counted).
    public func freeSpace() throws -> UInt64 { try fileSystem.statistics(directory).available }

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

    /// Syncs the directory, so renames and new entries survive a crash.
    public func sync() throws { try fileSystem.syncDirectory(directory) }

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

    /// Writes a small file atomically: a new temporary file (0600) written and synced, renamed
    /// over `name`, the directory synced.
    public func writeFileAtomically(_ name: String, _ bytes: [UInt8]) throws {
        let tmp = "." + name + ".tmp"
        if exists(tmp) { try remove(tmp) }
        let store = try provider.create(path(of: tmp))
        do {
            try store.write(bytes, at: 0)
            try store.sync()
        } catch {
            try? remove(tmp)
            throw error
        }
        try rename(tmp, to: name)
        try sync()
    }

    /// Reads a small file.
    public func readFile(_ name: String) throws -> [UInt8] {
        let store = try provider.open(path(of: name), writable: false)
        return try store.read(count: Int(min(store.size, 1 << 20)), at: 0)
    }
}
