/// A LUN's capacity and block size, as READ CAPACITY(16) reports them (SBC-4 §5.20.2).
public struct SCSICapacity: Sendable, Hashable {
    /// Number of logical blocks.
    public var blocks: UInt64
    /// Bytes per logical block.
    public var blockSize: Int
    /// Logical blocks per physical block, as a power of two.
    public var physicalExponent: Int
    /// Logical block provisioning management enabled (the LUN is thin).
    public var thin: Bool
    /// Unmapped blocks read as zeros.
    public var unmappedReadZeros: Bool

    /// Size in bytes.
    public var bytes: UInt64 { blocks * UInt64(blockSize) }

    /// Parses the 32-byte answer (nil when too short or the block size is 0).
    public init?(_ d: [UInt8]) {
        guard d.count >= 16 else { return nil }
        let last = d[0..<8].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        let size = d[8..<12].reduce(0) { $0 << 8 | Int($1) }
        guard size > 0 else { return nil }
        blocks = last &+ 1
        blockSize = size
        physicalExponent = Int(d[13] & 0x0f)
        thin = d[14] & 0x80 != 0
        unmappedReadZeros = d[14] & 0x40 != 0
    }

    /// A capacity of `blocks` blocks of `blockSize` bytes.
    public init(blocks: UInt64, blockSize: Int) {
        self.blocks = blocks
        self.blockSize = blockSize
        physicalExponent = 0
        thin = false
        unmappedReadZeros = false
    }
}
