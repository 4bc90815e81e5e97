/// Little-endian field access on byte arrays, the encoding of every LVM2 binary structure.
extension Array where Element == UInt8 {
    /// The little-endian u32 at `offset`.
    @inlinable func le32(_ offset: Int) -> UInt32 {
        UInt32(self[offset]) | UInt32(self[offset + 1]) << 8 | UInt32(self[offset + 2]) << 16 | UInt32(self[offset + 3]) << 24
    }
    /// The little-endian u64 at `offset`.
    @inlinable func le64(_ offset: Int) -> UInt64 { UInt64(le32(offset)) | UInt64(le32(offset + 4)) << 32 }
    /// Stores a little-endian u32.
    @inlinable mutating func setLE32(_ v: UInt32, at offset: Int) {
        for i in 0..<4 { self[offset + i] = UInt8((v >> (8 * UInt32(i))) & 0xff) }
    }
    /// Stores a little-endian u64.
    @inlinable mutating func setLE64(_ v: UInt64, at offset: Int) {
        for i in 0..<8 { self[offset + i] = UInt8((v >> (8 * UInt64(i))) & 0xff) }
    }
    /// Copies `src` into self at `offset`.
    @inlinable mutating func put(_ src: [UInt8], at offset: Int) {
        replaceSubrange(offset..<offset + src.count, with: src)
    }
}
