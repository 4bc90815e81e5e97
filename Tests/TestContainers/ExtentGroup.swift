import Foundation
import VHD
#if canImport(Glibc)
import Glibc
#endif

/// One volume group over one preallocated file (or a block device): the backing descriptor,
/// the newest committed table, and the mappings of the volumes open in this process. Every
/// change is a whole new table committed to the other slot (`ExtentTableSlots`); before each
/// operation the group rereads the slots, so changes another process committed are seen, as
/// LVM rereads its metadata.
public final class ExtentGroup: @unchecked Sendable {
    /// The backing file.
    public let backing: String
    /// Its descriptor (read-write).
    let fd: Int32
    /// Bytes per extent.
    public let extentSize: UInt64
    private let lock = NSRecursiveLock()
    // Guarded by `lock`.
    private var committed: ExtentTable
    private var sequence: UInt64
    private var mappings: [UInt64: ExtentMapping] = [:]

    /// Makes `backing` (created if missing) a new empty group `name` of `size` bytes (whole
    /// extents; a file is preallocated), wiping both table slots first.
    public static func format(_ backing: String, name: String, size: UInt64, extentSize: UInt64 = 4 << 20) throws {
        let fd = Glibc.open(backing, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw VHDError.io(path: backing, operation: "open", errno: errno) }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw VHDError.io(path: backing, operation: "stat", errno: errno) }
        var bytes = size / extentSize * extentSize
        if (st.st_mode & S_IFMT) == S_IFBLK {
            bytes = min(bytes, UInt64(max(0, lseek(fd, 0, SEEK_END)))) / extentSize * extentSize
        } else {
            guard ftruncate(fd, off_t(bytes)) == 0 else { throw VHDError.io(path: backing, operation: "truncate", errno: errno) }
            // Preallocated, as a LUN is: writing a volume never fails for want of room underneath.
            let e = posix_fallocate(fd, 0, off_t(bytes))
            guard e == 0 || e == EOPNOTSUPP else { throw VHDError.io(path: backing, operation: "fallocate", errno: e) }
        }
        guard bytes / extentSize >= 2 else { throw VHDError.invalidArgument("a group needs two extents at least") }
        let zeros = [UInt8](repeating: 0, count: Int(ExtentTableSlots.headerBytes))
        for i in 0..<2 { try ExtentIO.write(fd, zeros, at: ExtentTableSlots.offset(of: i, extentSize: extentSize)) }
        try ExtentIO.sync(fd)
        try ExtentTableSlots.write(ExtentTable(group: name, extentSize: extentSize, extentCount: bytes / extentSize),
                                   sequence: 1, to: fd)
    }

    /// Opens the group in `backing` (formatted by `format`), loading its newest valid table.
    public init(backing: String, extentSize: UInt64 = 4 << 20) throws {
        let fd = Glibc.open(backing, O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { throw VHDError.io(path: backing, operation: "open", errno: errno) }
        guard let (table, sequence) = ExtentTableSlots.newest(fd, extentSize: extentSize) else {
            close(fd)
            throw VHDError.invalidArgument("\(backing) holds no valid volume table")
        }
        self.backing = backing
        self.fd = fd
        self.extentSize = extentSize
        committed = table
        self.sequence = sequence
    }

    deinit { close(fd) }

    /// The newest table (reread from disk when another process committed since).
    public var table: ExtentTable { lock.withLock { reload(); return committed } }

    /// The sequence number of the newest table.
    public var currentSequence: UInt64 { lock.withLock { reload(); return sequence } }

    /// Rereads the slots; adopts a newer table and brings the open mappings up to date.
    private func reload() {
        guard let (table, seq) = ExtentTableSlots.newest(fd, extentSize: extentSize), seq != sequence else { return }
        adopt(table, seq)
    }

    private func adopt(_ table: ExtentTable, _ seq: UInt64) {
        committed = table
        sequence = seq
        let byID = Dictionary(uniqueKeysWithValues: table.volumes.values.map { ($0.id, $0.runs) })
        for (id, m) in mappings {
            if let runs = byID[id] { m.update(runs) } else { m.remove(); mappings[id] = nil }
        }
    }

    /// Applies `change` to the newest table and commits the result (next sequence number, the
    /// other slot, synced); returns what `change` returned. Nothing is committed when it throws.
    @discardableResult
    public func update<T>(_ change: (inout ExtentTable) throws -> T) throws -> T {
        try lock.withLock {
            reload()
            var table = committed
            let result = try change(&table)
            if table != committed {
                try ExtentTableSlots.write(table, sequence: sequence + 1, to: fd)
                adopt(table, sequence + 1)
            }
            return result
        }
    }

    /// The mapping shared by every store open on volume `name` in this process.
    func mapping(of name: String) throws -> ExtentMapping {
        try lock.withLock {
            reload()
            guard let v = committed.volumes[name] else { throw VHDError.io(path: name, operation: "open", errno: ENOENT) }
            if let m = mappings[v.id] { return m }
            let m = ExtentMapping(runs: v.runs, extentSize: extentSize)
            mappings[v.id] = m
            return m
        }
    }

    /// Writes `bytes` at byte `offset` of `runs` (which must hold them).
    func write(_ bytes: [UInt8], into runs: [ExtentTable.Run], at offset: UInt64) throws {
        var done = 0
        for s in ExtentMapping.segments(runs, extentSize: extentSize, offset: offset, count: bytes.count) {
            try ExtentIO.write(fd, Array(bytes[done..<done + s.length]), at: s.physical)
            done += s.length
        }
    }

    /// `count` bytes at byte `offset` of `runs`.
    func read(_ runs: [ExtentTable.Run], count: Int, at offset: UInt64) throws -> [UInt8] {
        var out: [UInt8] = []
        for s in ExtentMapping.segments(runs, extentSize: extentSize, offset: offset, count: count) {
            out += try ExtentIO.read(fd, count: s.length, at: s.physical)
        }
        return out
    }

    /// fdatasync of the backing file.
    public func sync() throws { try ExtentIO.sync(fd) }
}
