import CBT
import Foundation

/// The changed-block tracking of one active VDI's datapath (the role tapdisk's CBT log plays):
/// opened with the writable chain, it marks the log inconsistent on disk, then sets the bits of
/// every block a WRITE, WRITE_ZEROES or TRIM touches in memory before the request is answered,
/// writes the changed bitmap pages back at each flush, and on a clean pause or close writes
/// the rest and marks the log consistent again. A crash leaves the log marked inconsistent, so
/// its bitmap is never taken for complete. Thread-safe: writes arrive from event loops and the
/// chain thread.
public final class CBTTracker: @unchecked Sendable {
    /// Bytes of bitmap written back as one unit (one page covers 2 GiB of disk).
    static let pageSize = 4096

    /// The VDI tracked.
    public let vdi: String
    /// Its log.
    let log: CBTLog
    private var header: CBTLogHeader
    private let lock = NSLock()
    // Guarded by `lock`.
    private var bitmap: CBTBitmap
    private var dirtyPages = Set<Int>()

    /// Opens VDI `vdi`'s log in `logs` for a datapath that writes, marking it inconsistent;
    /// nil when the VDI has no log (tracking off).
    public static func open(_ logs: CBTLogs, vdi: String) throws -> CBTTracker? {
        guard logs.exists(vdi) else { return nil }
        return try CBTTracker(log: try logs.open(vdi, writable: true), vdi: vdi)
    }

    /// Tracking into `log`: its bitmap read, the log marked inconsistent on disk.
    init(log: CBTLog, vdi: String) throws {
        self.log = log
        self.vdi = vdi
        var h = try log.header()
        bitmap = try log.bitmap(h)
        h.consistent = false
        try log.writeHeader(h)
        try log.sync()
        header = h
    }

    /// Disk bytes the log covers.
    public var size: UInt64 { header.size }

    /// Marks the blocks of `[offset, offset + length)` changed (in memory).
    public func mark(offset: UInt64, length: UInt64) {
        lock.lock()
        defer { lock.unlock() }
        guard let changed = bitmap.mark(offset: offset, length: length) else { return }
        for page in (changed.lowerBound / Self.pageSize)...((changed.upperBound - 1) / Self.pageSize) { dirtyPages.insert(page) }
    }

    /// Whether block `n` is marked (tests).
    public func isMarked(block n: UInt64) -> Bool { lock.withLock { bitmap.isSet(n) } }

    /// Writes the bitmap pages changed since the last call to the log (not forced to disk: the
    /// log stays inconsistent until `close`).
    public func persist() throws {
        let pages: [(Int, [UInt8])] = lock.withLock {
            defer { dirtyPages.removeAll(keepingCapacity: true) }
            return dirtyPages.sorted().map { p in
                let lo = p * Self.pageSize, hi = min(lo + Self.pageSize, bitmap.bytes.count)
                return (lo, Array(bitmap.bytes[lo..<hi]))
            }
        }
        for (at, bytes) in pages {
            try bytes.withUnsafeBytes { try log.writeBitmap($0, range: 0..<bytes.count, at: at) }
        }
    }

    /// A clean end (pause, close): the bitmap written and forced to disk, then the log marked consistent.
    public func close() throws {
        try persist()
        try log.sync()
        header.consistent = true
        try log.writeHeader(header)
        try log.sync()
    }
}
