/// Big-endian field access on byte arrays, the encoding of every VHD structure.
extension Array where Element == UInt8 {
    /// The big-endian u16 at `offset`.
    @inlinable func be16(_ offset: Int) -> UInt16 { UInt16(self[offset]) << 8 | UInt16(self[offset + 1]) }
    /// The big-endian u32 at `offset`.
    @inlinable func be32(_ offset: Int) -> UInt32 {
        UInt32(self[offset]) << 24 | UInt32(self[offset + 1]) << 16 | UInt32(self[offset + 2]) << 8 | UInt32(self[offset + 3])
    }
    /// The big-endian u64 at `offset`.
    @inlinable func be64(_ offset: Int) -> UInt64 { UInt64(be32(offset)) << 32 | UInt64(be32(offset + 4)) }
    /// Stores a big-endian u16.
    @inlinable mutating func setBE16(_ v: UInt16, at offset: Int) {
        self[offset] = UInt8(v >> 8); self[offset + 1] = UInt8(v & 0xff)
    }
    /// Stores a big-endian u32.
    @inlinable mutating func setBE32(_ v: UInt32, at offset: Int) {
        self[offset] = UInt8(v >> 24); self[offset + 1] = UInt8((v >> 16) & 0xff)
        self[offset + 2] = UInt8((v >> 8) & 0xff); self[offset + 3] = UInt8(v & 0xff)
    }
    /// Stores a big-endian u64.
    @inlinable mutating func setBE64(_ v: UInt64, at offset: Int) {
        setBE32(UInt32(v >> 32), at: offset); setBE32(UInt32(v & 0xffff_ffff), at: offset + 4)
    }
    /// The bytes at `range` as an array.
    @inlinable func bytes(_ offset: Int, _ count: Int) -> [UInt8] { Array(self[offset..<offset + count]) }
    /// Copies `src` into self at `offset`.
    @inlinable mutating func put(_ src: [UInt8], at offset: Int) {
        replaceSubrange(offset..<offset + src.count, with: src)
    }
    /// Whether every byte in `range` is zero.
    @inlinable func allZero(_ range: Range<Int>) -> Bool { self[range].allSatisfy { $0 == 0 } }
}

/// The VHD checksum: one's complement of the byte sum, with the checksum field itself taken as zero.
func vhdChecksum(_ bytes: [UInt8], skipping field: Range<Int>) -> UInt32 {
    var sum: UInt32 = 0
    for i in 0..<bytes.count where !field.contains(i) { sum &+= UInt32(bytes[i]) }
    return ~sum
}

/// Rounds `value` up to a multiple of `unit`.
@inlinable func roundUp(_ value: UInt64, to unit: UInt64) -> UInt64 { (value + unit - 1) / unit * unit }
