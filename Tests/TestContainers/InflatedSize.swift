import VHD

/// How big a volume must be for the VHD in it to reach a virtual size with every block written
/// (what LVHD inflates a writable leaf, or a parent before a merge, to): the metadata for that
/// size, each block's bitmap and data at its worst alignment, and the footer. Sizes are bytes;
/// the container rounds them up to extents.
public enum InflatedSize {
    /// The most one block takes when appended: the alignment gap, its bitmap and its data.
    static func stride(blockSize: UInt64, bitmapBytes: UInt64) -> UInt64 { blockSize + bitmapBytes + 4096 }

    /// A new image of `virtualSize` bytes with every block (2 MiB blocks, a batmap, the three
    /// parent locators of a differencing disk): the estimate when there is no image yet.
    public static func estimate(virtualSize: UInt64) -> UInt64 {
        let bs = UInt64(DynamicHeader.defaultBlockSize)
        let n = (virtualSize + bs - 1) / bs
        let metadata = 1536 + roundUp(n * 4, 512) + 512 + UInt64(BatmapHeader.sectors(forEntries: UInt32(n))) * 512 + 3 * 512
        return roundUp(metadata, 4096) + n * stride(blockSize: bs, bitmapBytes: 512) + 512
    }

    /// What `image` (opened with its BAT) can reach once it is `virtualSize` bytes: the blocks
    /// it lacks appended after its data, and, when its BAT must grow first, the blocks in the
    /// way of the new metadata appended again (as `Resize` moves them).
    public static func of(_ image: VHDImage, virtualSize: UInt64) -> UInt64 {
        guard image.diskType != .fixed, let header = image.header else { return max(virtualSize, image.virtualSize) + 512 }
        let bs = UInt64(image.blockSize)
        let n = (max(virtualSize, image.virtualSize) + bs - 1) / bs
        var metadataEnd = image.endOfMetadata
        var moved: UInt64 = 0
        if virtualSize > Resize.fastLimit(image) {
            var end = header.tableOffset + roundUp(n * 4, 512)
            if image.batmapHeader != nil { end += 512 + UInt64(BatmapHeader.sectors(forEntries: UInt32(n))) * 512 }
            for l in header.locators where l.rawCode != 0 { end += l.spaceInBytes ?? 512 }
            metadataEnd = max(metadataEnd, end)
            for b in 0..<image.maxTableEntries where image.entry(b) != VHDImage.unused && UInt64(image.entry(b)) * 512 < metadataEnd {
                moved += 1
            }
        }
        let allocated = UInt64(image.allocatedBlockCount)
        let lacking = n > allocated ? n - allocated : 0
        let start = roundUp(max(image.endOfData, metadataEnd), 512)
        return start + (lacking + moved) * stride(blockSize: bs, bitmapBytes: UInt64(image.bitmapBytes)) + 512
    }

    static func roundUp(_ v: UInt64, _ unit: UInt64) -> UInt64 { (v + unit - 1) / unit * unit }
}
