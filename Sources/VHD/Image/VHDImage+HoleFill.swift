/// How much of a sparse image file a merge would fill: the engine writes a block's sectors
/// only as they are written, and TRIM punches pages back out, so a parent block can hold file
/// holes that merging a child's sectors into it allocates.
extension VHDImage {
    /// Bytes of this image's file that merging block `b` of `child` (the sectors it marks
    /// present) would newly allocate: the file holes under those sectors, in whole 4 KiB pages.
    /// 0 when this image does not have block `b` (the block is appended whole instead) or its
    /// store has no holes to tell of.
    public func holeBytes(fillingBlock b: Int, from child: VHDImage) throws -> UInt64 {
        guard b < maxTableEntries, isAllocated(b), child.isAllocated(b) else { return 0 }
        let data = dataOffset(block: b, sector: 0)
        let page: UInt64 = 4096
        var holes: UInt64 = 0
        let map = try child.bitmap(b)
        SectorBitmap.forEachRun(map, in: 0..<min(sectorsPerBlock, child.sectorsPerBlock)) { start, count, present in
            guard present else { return }
            let lo = (data + UInt64(start) * 512) / page * page
            let hi = (data + UInt64(start + count) * 512 + page - 1) / page * page
            holes += store.unallocatedBytes(in: lo..<hi)
        }
        return holes
    }
}
