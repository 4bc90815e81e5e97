import VHD

/// One CBT log on a `BlockStore`: the header (`CBTLogHeader`) then the bitmap (`CBTBitmap`), as
/// blktap's `cbt-util` lays them out. Reads and writes go through the store only, so the same
/// code serves a file of a file SR and an LV of an LVM SR (whose store may be longer than the log).
public struct CBTLog {
    /// Where the log lives.
    public let store: any BlockStore

    /// A log over `store`.
    public init(store: any BlockStore) { self.store = store }

    /// Writes a new log (header, then an all-clear bitmap) for a disk of `size` bytes.
    @discardableResult
    public static func create(on store: any BlockStore, header: CBTLogHeader) throws -> CBTLog {
        let log = CBTLog(store: store)
        try log.writeBitmap(CBTBitmap(size: header.size))
        try log.writeHeader(header)
        try store.sync()
        return log
    }

    /// Bytes a log for a disk of `size` bytes takes.
    public static func byteCount(forSize size: UInt64) -> UInt64 {
        UInt64(CBTLogHeader.byteCount + CBTBitmap.byteCount(forSize: size))
    }

    /// The header.
    public func header() throws -> CBTLogHeader {
        guard store.size >= UInt64(CBTLogHeader.byteCount) else { throw CBTFormatError.malformed("log of \(store.size) bytes") }
        return try CBTLogHeader(bytes: try store.read(count: CBTLogHeader.byteCount, at: 0))
    }

    /// Rewrites the header (not forced to disk: `sync`).
    public func writeHeader(_ h: CBTLogHeader) throws { try store.write(h.encoded(), at: 0) }

    /// The whole bitmap for the size `header` states.
    public func bitmap(_ header: CBTLogHeader) throws -> CBTBitmap {
        let n = header.bitmapByteCount
        guard store.size >= UInt64(CBTLogHeader.byteCount + n) else {
            throw CBTFormatError.malformed("log of \(store.size) bytes holds no bitmap for \(header.size) bytes")
        }
        return CBTBitmap(bytes: try store.read(count: n, at: UInt64(CBTLogHeader.byteCount)))
    }

    /// Writes the whole bitmap.
    public func writeBitmap(_ b: CBTBitmap) throws { try store.write(b.bytes, at: UInt64(CBTLogHeader.byteCount)) }

    /// Writes bytes `range` of `bits` as the bitmap's bytes from `at` on.
    public func writeBitmap(_ bits: UnsafeRawBufferPointer, range: Range<Int>, at: Int) throws {
        try store.write(UnsafeRawBufferPointer(rebasing: bits[range]), at: UInt64(CBTLogHeader.byteCount + at))
    }

    /// Sets the consistency flag (and forces the header to disk).
    public func setConsistent(_ consistent: Bool) throws {
        var h = try header()
        h.consistent = consistent
        try writeHeader(h)
        try store.sync()
    }

    /// Grows the log to cover a disk of `size` bytes (`cbt-util set -s`): the new blocks clear,
    /// then the size in the header. A smaller size is refused.
    public func grow(toSize size: UInt64) throws {
        var h = try header()
        guard size >= h.size else { throw CBTFormatError.malformed("cannot shrink a log from \(h.size) to \(size) bytes") }
        let old = h.bitmapByteCount, new = CBTBitmap.byteCount(forSize: size)
        if new > old { try store.write([UInt8](repeating: 0, count: new - old), at: UInt64(CBTLogHeader.byteCount + old)) }
        h.size = size
        try store.sync()
        try writeHeader(h)
        try store.sync()
    }

    /// Forces the log to disk.
    public func sync() throws { try store.sync() }
}
