import CNBD
import Foundation

/// A blocking NBD client over a unix socket (Debian's libnbd): the handshake (newstyle fixed,
/// NBD_OPT_GO, structured replies), `base:allocation` and `qemu:allocation-depth` block status, read, write, write-zeroes
/// and flush. One connection; not shared between threads (open one per worker).
public final class NBDClient: @unchecked Sendable {
    private let handle: OpaquePointer
    /// The export's size in bytes.
    public let size: Int64
    /// Whether the server answers `base:allocation` block status.
    public let hasAllocationMap: Bool
    /// Whether the server accepts NBD_CMD_WRITE_ZEROES.
    public let canZero: Bool

    /// Whether the server answers `qemu:allocation-depth` block status (asked for at connection).
    public let hasDepthMap: Bool
    /// The name of the context that tells which image of a chain each range reads from.
    public static let allocationDepthContext = "qemu:allocation-depth"

    /// Connects to export `exportName` of the server on `socketPath`; `allocationDepth` asks for
    /// the `qemu:allocation-depth` context besides `base:allocation`.
    public init(socketPath: String, exportName: String, allocationDepth: Bool = false) throws(NBDClientError) {
        guard let h = nbd_create() else { throw .last("nbd_create") }
        // Read buffers are not zeroed first: a failed read throws, and its buffer is never used.
        guard nbd_set_export_name(h, exportName) == 0, nbd_set_pread_initialize(h, false) == 0,
              nbd_add_meta_context(h, LIBNBD_CONTEXT_BASE_ALLOCATION) == 0,
              !allocationDepth || nbd_add_meta_context(h, Self.allocationDepthContext) == 0,
              nbd_connect_unix(h, socketPath) == 0 else {
            let error = NBDClientError.last("connecting to \(socketPath) (export \(exportName))")
            nbd_close(h)
            throw error
        }
        let size = nbd_get_size(h)
        guard size >= 0 else {
            let error = NBDClientError.last("nbd_get_size")
            nbd_close(h)
            throw error
        }
        handle = h
        self.size = size
        hasAllocationMap = nbd_can_meta_context(h, LIBNBD_CONTEXT_BASE_ALLOCATION) == 1
        hasDepthMap = allocationDepth && nbd_can_meta_context(h, Self.allocationDepthContext) == 1
        canZero = nbd_can_zero(h) == 1
    }

    deinit {
        _ = nbd_shutdown(handle, 0)
        nbd_close(handle)
    }

    /// Reads `buffer.count` bytes at `offset`.
    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int64) throws(NBDClientError) {
        guard nbd_pread(handle, buffer.baseAddress, buffer.count, UInt64(offset), 0) == 0 else { throw .last("read at \(offset)") }
    }

    /// Writes `buffer` at `offset`.
    public func write(_ buffer: UnsafeRawBufferPointer, at offset: Int64) throws(NBDClientError) {
        guard nbd_pwrite(handle, buffer.baseAddress, buffer.count, UInt64(offset), 0) == 0 else { throw .last("write at \(offset)") }
    }

    /// Makes `length` bytes at `offset` read as zeros (NBD_CMD_WRITE_ZEROES, or written zeros
    /// when the server has no such command). `allocate` asks for the zeros to be written
    /// (NO_HOLE): they then hide what a parent image holds there.
    public func writeZeros(length: Int64, at offset: Int64, allocate: Bool = false) throws(NBDClientError) {
        if canZero {
            let flags = allocate ? UInt32(LIBNBD_CMD_FLAG_NO_HOLE) : 0
            guard nbd_zero(handle, UInt64(length), UInt64(offset), flags) == 0 else { throw .last("write zeroes at \(offset)") }
            return
        }
        let zeros = UnsafeMutableRawBufferPointer.allocate(byteCount: Int(min(length, 1 << 20)), alignment: 4096)
        defer { zeros.deallocate() }
        zeros.initializeMemory(as: UInt8.self, repeating: 0)
        var done: Int64 = 0
        while done < length {
            let n = Int(min(Int64(zeros.count), length - done))
            try write(UnsafeRawBufferPointer(rebasing: zeros[0..<n]), at: offset + done)
            done += Int64(n)
        }
    }

    /// Whether the server accepts NBD_CMD_TRIM.
    public var canTrim: Bool { nbd_can_trim(handle) == 1 }

    /// Tells the server `length` bytes at `offset` are no longer needed (NBD_CMD_TRIM); a server
    /// without TRIM is left alone (what a trimmed range reads is unspecified anyway).
    public func trim(length: Int64, at offset: Int64) throws(NBDClientError) {
        guard canTrim else { return }
        guard nbd_trim(handle, UInt64(length), UInt64(offset), 0) == 0 else { throw .last("trim at \(offset)") }
    }

    /// Flushes what was written to stable storage.
    public func flush() throws(NBDClientError) {
        guard nbd_flush(handle, 0) == 0 else { throw .last("flush") }
    }

    /// The `base:allocation` map of `[offset, offset+length)`, in order and covering the range;
    /// one allocated data extent when the server has no allocation map.
    public func allocation(offset: Int64, length: Int64) throws(NBDClientError) -> [NBDExtent] {
        guard hasAllocationMap else { return [NBDExtent(offset: offset, length: length, hole: false, zero: false)] }
        return try status(LIBNBD_CONTEXT_BASE_ALLOCATION, offset: offset, length: length).map { r in
            NBDExtent(offset: r.offset, length: r.length, hole: r.value & UInt32(LIBNBD_STATE_HOLE) != 0,
                      zero: r.value & UInt32(LIBNBD_STATE_ZERO) != 0)
        }
    }

    /// The `qemu:allocation-depth` map of `[offset, offset+length)`, in order and covering the
    /// range: for each run the image it reads from (0: none, 1: the top one, 2: its parent, ...);
    /// nil when the server has no such map (or it was not asked for).
    public func allocationDepth(offset: Int64, length: Int64) throws(NBDClientError) -> [(offset: Int64, length: Int64, depth: UInt32)]? {
        guard hasDepthMap else { return nil }
        return try status(Self.allocationDepthContext, offset: offset, length: length).map { ($0.offset, $0.length, $0.value) }
    }

    /// Context `context`'s extents over `[offset, offset+length)`, asked for as often as the
    /// server's replies stop short, clipped to the range.
    private func status(_ context: String, offset: Int64, length: Int64) throws(NBDClientError)
        -> [(offset: Int64, length: Int64, value: UInt32)] {
        let box = ExtentCollector(context: context)
        let end = offset + length
        var next = offset
        while next < end {
            box.start = next
            box.extents = []
            let count = UInt64(min(end - next, 1 << 30))
            let callback = nbd_extent_callback(callback: { user, context, _, entries, count, _ in
                guard let user, let context, let entries else { return 0 }
                let box = Unmanaged<ExtentCollector>.fromOpaque(user).takeUnretainedValue()
                guard String(cString: context) == box.context else { return 0 }
                var at = box.start
                var i = 0
                while i + 1 < count {
                    let length = Int64(entries[i])
                    box.extents.append((at, length, entries[i + 1]))
                    at += length
                    i += 2
                }
                return 0
            }, user_data: Unmanaged.passUnretained(box).toOpaque(), free: nil)
            let rc = withExtendedLifetime(box) { nbd_block_status(handle, count, UInt64(next), callback, 0) }
            guard rc == 0 else { throw .last("block status at \(next)") }
            guard let last = box.extents.last, last.offset + last.length > next else {
                throw NBDClientError(description: "block status at \(next): the server described no extent")
            }
            for var e in box.extents where e.offset < end {
                e.length = min(e.length, end - e.offset)
                box.all.append(e)
            }
            next = min(end, last.offset + last.length)
        }
        return box.all
    }

    /// Indexes of the `chunkSize` chunks of `[0, size)` holding anything that may not read as zeros.
    public func dataChunks(size: Int64, chunkSize: Int64) throws(NBDClientError) -> Set<Int64> {
        Self.chunks(touching: try allocation(offset: 0, length: size).filter { !$0.zero }.map { ($0.offset, $0.length) },
                    chunkSize: chunkSize)
    }

    /// Indexes of the `chunkSize` chunks that some of `ranges` (offset, length) touches.
    public static func chunks(touching ranges: [(offset: Int64, length: Int64)], chunkSize: Int64) -> Set<Int64> {
        var chunks = Set<Int64>()
        for r in ranges where r.length > 0 {
            var i = r.offset / chunkSize
            while i * chunkSize < r.offset + r.length {
                chunks.insert(i)
                i += 1
            }
        }
        return chunks
    }
}

/// Where the block status callback leaves the extents it is given for one context.
private final class ExtentCollector {
    let context: String
    var start: Int64 = 0
    var extents: [(offset: Int64, length: Int64, value: UInt32)] = []
    var all: [(offset: Int64, length: Int64, value: UInt32)] = []
    init(context: String) { self.context = context }
}
