import SystemPackage
#if canImport(Glibc)
import Glibc
#endif

/// A `BlockStore` over a POSIX file or block device (pread/pwrite).
public final class FileStore: BlockStore, DirectIOStore, HoleMapStore, DescriptorStore {
    /// The path the store was opened with.
    public let path: String
    /// The open descriptor.
    public let descriptor: FileDescriptor
    /// Whether writes are allowed.
    public let writable: Bool
    /// Whether the path is a block device.
    public let isBlockDevice: Bool
    private var cachedSize: UInt64
    private var directDescriptor: Int32 = -1
    /// Bulk operations set this: large, aligned transfers then bypass the page cache
    /// (O_DIRECT), which on a busy host is where copies spend their time. Metadata and small
    /// or unaligned transfers stay buffered; the kernel keeps both views coherent.
    public var preferDirectIO = false

    /// Opens an existing file or block device.
    public init(path: String, writable: Bool) throws {
        self.path = path
        self.writable = writable
        do {
            descriptor = try FileDescriptor.open(FilePath(path), writable ? .readWrite : .readOnly,
                                                 options: [.closeOnExec])
        } catch let errno as Errno {
            throw VHDError.io(path: path, operation: "open", errno: errno.rawValue)
        }
        var st = stat()
        guard fstat(descriptor.rawValue, &st) == 0 else {
            let e = errno
            try? descriptor.close()
            throw VHDError.io(path: path, operation: "stat", errno: e)
        }
        isBlockDevice = (st.st_mode & S_IFMT) == S_IFBLK
        if isBlockDevice {
            let end = lseek(descriptor.rawValue, 0, SEEK_END)
            cachedSize = UInt64(max(0, end))
        } else {
            cachedSize = UInt64(st.st_size)
        }
    }

    /// Creates a new empty file with exactly `mode` (the umask does not narrow or widen it;
    /// failing if it exists) and opens it read-write.
    public static func create(path: String, mode: FilePermissions = [.ownerReadWrite, .groupRead, .otherRead]) throws -> FileStore {
        do {
            let fd = try FileDescriptor.open(FilePath(path), .writeOnly, options: [.create, .exclusiveCreate, .closeOnExec],
                                             permissions: mode)
            defer { try? fd.close() }
            guard fchmod(fd.rawValue, mode.rawValue) == 0 else { throw Errno(rawValue: errno) }
        } catch let errno as Errno {
            throw VHDError.io(path: path, operation: "create", errno: errno.rawValue)
        }
        return try FileStore(path: path, writable: true)
    }

    deinit {
        if directDescriptor >= 0 { close(directDescriptor) }
        try? descriptor.close()
    }

    /// The O_DIRECT descriptor for a transfer of `count` bytes at `offset` from `address`, or the
    /// buffered one when direct I/O is off, refused by the filesystem, or the transfer unaligned.
    private func fd(for address: UnsafeRawPointer?, count: Int, offset: UInt64) -> Int32 {
        guard preferDirectIO, count >= 64 << 10, count % 4096 == 0, offset % 4096 == 0,
              let a = address, Int(bitPattern: a) % 4096 == 0 else { return descriptor.rawValue }
        if directDescriptor < 0 {
            directDescriptor = open(path, (writable ? O_RDWR : O_RDONLY) | 0o40000 /* O_DIRECT */ | O_CLOEXEC)
            if directDescriptor < 0 { preferDirectIO = false; return descriptor.rawValue }
        }
        return directDescriptor
    }

    /// Current size in bytes.
    public var size: UInt64 { cachedSize }

    /// Reads exactly `buffer.count` bytes at `offset`.
    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        guard offset <= cachedSize, UInt64(buffer.count) <= cachedSize - offset else {
            throw VHDError.shortRead(path: path, offset: offset, count: buffer.count)
        }
        var done = 0
        let fd = FileDescriptor(rawValue: fd(for: buffer.baseAddress, count: buffer.count, offset: offset))
        while done < buffer.count {
            let n: Int
            do {
                n = try fd.read(fromAbsoluteOffset: Int64(offset) + Int64(done),
                                into: UnsafeMutableRawBufferPointer(rebasing: buffer[done...]))
            } catch let e as Errno {
                throw VHDError.io(path: path, operation: "read", errno: e.rawValue)
            }
            if n == 0 { throw VHDError.shortRead(path: path, offset: offset, count: buffer.count) }
            done += n
        }
    }

    /// Writes all of `buffer` at `offset`.
    public func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws {
        guard writable else { throw VHDError.readOnly(path: path) }
        if isBlockDevice && (offset > cachedSize || UInt64(buffer.count) > cachedSize - offset) {
            throw VHDError.noSpace(path: path, needed: offset &+ UInt64(buffer.count), available: cachedSize)
        }
        let fd = FileDescriptor(rawValue: fd(for: buffer.baseAddress, count: buffer.count, offset: offset))
        do {
            _ = try fd.writeAll(toAbsoluteOffset: Int64(offset), buffer)
        } catch let e as Errno {
            throw VHDError.io(path: path, operation: "write", errno: e.rawValue)
        }
        cachedSize = max(cachedSize, offset + UInt64(buffer.count))
    }

    /// Truncates or extends the file (block devices cannot change size).
    public func resize(to size: UInt64) throws {
        guard writable else { throw VHDError.readOnly(path: path) }
        if isBlockDevice {
            guard size <= cachedSize else { throw VHDError.noSpace(path: path, needed: size, available: cachedSize) }
            return
        }
        guard ftruncate(descriptor.rawValue, off_t(size)) == 0 else {
            throw VHDError.io(path: path, operation: "truncate", errno: errno)
        }
        cachedSize = size
    }

    /// fdatasync.
    public func sync() throws {
        guard fdatasync(descriptor.rawValue) == 0 else {
            throw VHDError.io(path: path, operation: "sync", errno: errno)
        }
    }

    /// glibc's fallocate(2), looked up at run time (Glibc's module map does not show it).
    private typealias Fallocate = @convention(c) (Int32, Int32, off_t, off_t) -> Int32
    private static let fallocate: Fallocate? = dlsym(nil, "fallocate").map { unsafeBitCast($0, to: Fallocate.self) }

    /// Punches a hole (fallocate PUNCH_HOLE | KEEP_SIZE) over the part of `count` bytes at
    /// `offset` that lies inside the file. Block devices keep their data (an LV gains no space
    /// back, and the kernel would write zeros instead), and so do filesystems that cannot punch:
    /// false then. The page cache drops the punched pages, so every reader sees zeros at once.
    public func discard(offset: UInt64, count: UInt64) throws -> Bool {
        guard writable else { throw VHDError.readOnly(path: path) }
        guard !isBlockDevice, let fallocate = Self.fallocate else { return false }
        guard offset < cachedSize, count > 0 else { return true }
        let n = min(count, cachedSize - offset)
        while fallocate(descriptor.rawValue, 0x02 /* FALLOC_FL_PUNCH_HOLE */ | 0x01 /* FALLOC_FL_KEEP_SIZE */,
                        off_t(offset), off_t(n)) != 0 {
            let e = errno
            if e == EINTR { continue }
            if e == EOPNOTSUPP || e == ENOSYS { return false }
            throw VHDError.io(path: path, operation: "punch hole", errno: e)
        }
        return true
    }

    /// The holes of the file in `range` (lseek SEEK_HOLE / SEEK_DATA), up to the file's end;
    /// 0 for block devices and when the file system cannot tell (then it reports no holes).
    public func unallocatedBytes(in range: Range<UInt64>) -> UInt64 {
        guard !isBlockDevice else { return 0 }
        let seekData: Int32 = 3, seekHole: Int32 = 4      // SEEK_DATA, SEEK_HOLE (Linux)
        let end = min(range.upperBound, cachedSize)
        var at = range.lowerBound
        var holes: UInt64 = 0
        while at < end {
            let hole = lseek(descriptor.rawValue, off_t(at), seekHole)
            guard hole >= 0, UInt64(hole) < end else { break }
            let data = lseek(descriptor.rawValue, off_t(hole), seekData)
            let holeEnd = data < 0 ? end : min(UInt64(data), end)      // ENXIO: a hole to the end
            holes += holeEnd - UInt64(hole)
            at = holeEnd
        }
        return holes
    }

    /// Seconds since the Unix epoch of the last modification.
    public func modificationTime() -> Int? {
        var st = stat()
        guard fstat(descriptor.rawValue, &st) == 0 else { return nil }
        return Int(st.st_mtim.tv_sec)
    }

    /// The next offset at or after `offset` that holds data (3 /* SEEK_DATA */), or nil past the last data.
    public func nextData(from offset: UInt64) -> UInt64? {
        let r = lseek(descriptor.rawValue, off_t(offset), 3 /* SEEK_DATA */)
        if r < 0 { return errno == ENXIO ? nil : offset }
        return UInt64(r)
    }

    /// The next hole at or after `offset` (4 /* SEEK_HOLE */); the end of the file if none.
    public func nextHole(from offset: UInt64) -> UInt64 {
        let r = lseek(descriptor.rawValue, off_t(offset), 4 /* SEEK_HOLE */)
        return r < 0 ? cachedSize : UInt64(r)
    }
}
