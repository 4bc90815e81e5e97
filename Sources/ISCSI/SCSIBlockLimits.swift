/// What the Block Limits (VPD 0xB0) and Logical Block Provisioning (VPD 0xB2) pages say about
/// transfers and UNMAP (SBC-4 §6.6.4, §6.6.6).
public struct SCSIBlockLimits: Sendable, Hashable {
    /// Most blocks one READ or WRITE may move (0: no limit stated).
    public var maximumTransferBlocks: UInt32 = 0
    /// Preferred transfer size in blocks (0: none stated).
    public var optimalTransferBlocks: UInt32 = 0
    /// Most blocks one UNMAP may name (0: UNMAP not offered through this page).
    public var maximumUnmapBlocks: UInt32 = 0
    /// Most block descriptors one UNMAP may carry.
    public var maximumUnmapDescriptors: UInt32 = 0
    /// Preferred UNMAP granularity in blocks.
    public var unmapGranularity: UInt32 = 0
    /// The LUN supports UNMAP (VPD 0xB2 LBPU).
    public var unmapSupported = false
    /// WRITE SAME(16) with UNMAP is supported (VPD 0xB2 LBPWS).
    public var writeSameUnmap = false
    /// Unmapped blocks read as zeros (VPD 0xB2 LBPRZ).
    public var unmappedReadZeros = false

    /// No limits known, no UNMAP.
    public init() {}

    /// Reads the pages (either may be empty when the LUN does not offer it).
    public init(blockLimits b0: [UInt8], provisioning b2: [UInt8]) {
        func be32(_ d: [UInt8], _ at: Int) -> UInt32 {
            guard d.count >= at + 4 else { return 0 }
            return d[at..<at + 4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        }
        if b0.count >= 4 && b0[1] == 0xB0 {
            maximumTransferBlocks = be32(b0, 8)
            optimalTransferBlocks = be32(b0, 12)
            maximumUnmapBlocks = be32(b0, 20)
            maximumUnmapDescriptors = be32(b0, 24)
            unmapGranularity = be32(b0, 28)
        }
        if b2.count >= 6 && b2[1] == 0xB2 {
            unmapSupported = b2[5] & 0x80 != 0
            writeSameUnmap = b2[5] & 0x40 != 0
            unmappedReadZeros = b2[5] & 0x04 != 0
        }
    }
}
