import Foundation

/// The changed-block bitmap of a CBT log: one bit per 64 KiB block of the disk, bit `n` in byte
/// `n / 8` under mask `1 << (n % 8)` (tapdisk sets bits in native little-endian words, so block 0
/// is the lowest bit of byte 0), `ceil(ceil(size / 64 KiB) / 8)` bytes long.
public struct CBTBitmap: Sendable, Equatable {
    /// Bytes of disk one bit stands for (`CBT_BLOCK_SIZE`).
    public static let blockSize: UInt64 = 64 << 10

    /// The bitmap as stored.
    public var bytes: [UInt8]

    /// Blocks of a disk of `size` bytes (a partial last block counts).
    public static func blockCount(forSize size: UInt64) -> UInt64 { (size + blockSize - 1) / blockSize }

    /// Bytes of the bitmap of a disk of `size` bytes.
    public static func byteCount(forSize size: UInt64) -> Int { Int((blockCount(forSize: size) + 7) / 8) }

    /// An empty bitmap for a disk of `size` bytes.
    public init(size: UInt64) { bytes = [UInt8](repeating: 0, count: Self.byteCount(forSize: size)) }

    /// A bitmap of stored bytes.
    public init(bytes: [UInt8]) { self.bytes = bytes }

    /// Whether block `n` changed.
    public func isSet(_ n: UInt64) -> Bool {
        let i = Int(n >> 3)
        return i < bytes.count && bytes[i] & (1 << UInt8(n & 7)) != 0
    }

    /// Marks block `n` changed.
    public mutating func set(_ n: UInt64) { bytes[Int(n >> 3)] |= 1 << UInt8(n & 7) }

    /// Marks every block `[offset, offset + length)` touches (bytes of the disk) and returns the
    /// range of bitmap bytes that changed, nil when none did.
    @discardableResult
    public mutating func mark(offset: UInt64, length: UInt64) -> Range<Int>? {
        guard length > 0, !bytes.isEmpty else { return nil }
        let first = offset / Self.blockSize, last = min((offset + length - 1) / Self.blockSize, UInt64(bytes.count) * 8 - 1)
        guard first <= last else { return nil }
        return bytes.withUnsafeMutableBufferPointer { Self.mark(first: first, last: last, in: $0) }
    }

    /// Sets blocks `first...last` in `bits`; the range of bytes that changed, nil when none did.
    static func mark(first: UInt64, last: UInt64, in bits: UnsafeMutableBufferPointer<UInt8>) -> Range<Int>? {
        var lo = Int.max, hi = -1
        var n = first
        while n <= last {
            let i = Int(n >> 3)
            let mask: UInt8
            if n & 7 == 0 && last - n >= 7 {
                mask = 0xFF
                n += 8
            } else {
                mask = 1 << UInt8(n & 7)
                n += 1
            }
            if bits[i] & mask != mask {
                bits[i] |= mask
                lo = min(lo, i); hi = max(hi, i)
            }
        }
        return hi < 0 ? nil : lo..<(hi + 1)
    }

    /// Adds the blocks of `other` (a bitmap of the same or a smaller disk).
    public mutating func formUnion(_ other: CBTBitmap) {
        let n = min(bytes.count, other.bytes.count)
        bytes.withUnsafeMutableBytes { dst in
            other.bytes.withUnsafeBytes { src in
                // Eight bytes at a time (a 2 TiB bitmap is 4 MiB), then the tail.
                var i = 0
                while i + 8 <= n {
                    let word = dst.loadUnaligned(fromByteOffset: i, as: UInt64.self) | src.loadUnaligned(fromByteOffset: i, as: UInt64.self)
                    dst.storeBytes(of: word, toByteOffset: i, as: UInt64.self)
                    i += 8
                }
                while i < n { dst[i] |= src[i]; i += 1 }
            }
        }
    }

    /// Grows (never shrinks) to cover a disk of `size` bytes; new blocks unchanged.
    public mutating func grow(toSize size: UInt64) {
        let n = Self.byteCount(forSize: size)
        if n > bytes.count { bytes += [UInt8](repeating: 0, count: n - bytes.count) }
    }

    /// Blocks marked changed.
    public var changedBlockCount: Int { bytes.reduce(0) { $0 + $1.nonzeroBitCount } }

    /// The changed parts of a disk of `size` bytes as byte ranges (runs of changed blocks, the
    /// last cut at `size`).
    public func changedRanges(size: UInt64) -> [Range<UInt64>] {
        var out: [Range<UInt64>] = []
        let blocks = min(Self.blockCount(forSize: size), UInt64(bytes.count) * 8)
        var n: UInt64 = 0
        while n < blocks {
            if bytes[Int(n >> 3)] == 0 && n & 7 == 0 { n += 8; continue }
            guard isSet(n) else { n += 1; continue }
            var end = n + 1
            while end < blocks && isSet(end) { end += 1 }
            out.append(n * Self.blockSize..<min(end * Self.blockSize, size))
            n = end
        }
        return out
    }

    /// The bitmap as `vdi_list_changed_blocks` answers it (before base64): the Python SM reads the
    /// log's bytes into a big-endian `bitarray` and reverses each byte, so block 0 is the most
    /// significant bit of byte 0.
    public var xapiBytes: [UInt8] {
        let table = Self.reversedTable
        return bytes.map { table[Int($0)] }
    }

    /// `reversed` of every byte value.
    static let reversedTable: [UInt8] = (0...255).map { reversed(UInt8($0)) }

    /// `b` with its bits in the opposite order.
    static func reversed(_ b: UInt8) -> UInt8 {
        var v = b
        v = (v & 0xF0) >> 4 | (v & 0x0F) << 4
        v = (v & 0xCC) >> 2 | (v & 0x33) << 2
        v = (v & 0xAA) >> 1 | (v & 0x55) << 1
        return v
    }
}
