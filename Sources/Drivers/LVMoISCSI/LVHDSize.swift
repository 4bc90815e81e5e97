import VHD

/// LVHD's sizes, as the Python SM's `lvhdutil.calcSizeVHDLV` and `vhdutil.calcOverhead*` compute
/// them: a leaf LV holds its VHD at full size with metadata preallocated for 2 TiB.
public enum LVHDSize {
    /// The virtual size VHD metadata is preallocated for (`lvhdutil.MSIZE`): 2 TiB.
    public static let preallocatedVirtualSize: UInt64 = 2 << 40
    /// VHD block size: 2 MiB.
    public static let blockSize: UInt64 = 2 << 20

    /// `n` rounded up to a multiple of `unit`.
    public static func roundUp(_ n: UInt64, _ unit: UInt64) -> UInt64 { (n + unit - 1) / unit * unit }

    /// Metadata of an empty dynamic VHD of `virtualSize` bytes: footer copy, header, BAT, batmap
    /// (`calcOverheadEmpty`), rounded to 4 KiB.
    public static func emptyOverhead(virtualSize: UInt64) -> UInt64 {
        let blocks = roundUp(virtualSize, blockSize) / blockSize
        let bat = roundUp(blocks * 4, 512)
        let batmap = roundUp(roundUp(blocks, 8) / 8, 512)
        return roundUp(3 * 1024 + bat + batmap, 4096)
    }

    /// Sector bitmaps of every block, each padded to 4 KiB (`calcOverheadBitmap`).
    public static func bitmapOverhead(virtualSize: UInt64) -> UInt64 {
        roundUp(virtualSize, blockSize) / blockSize * 4096
    }

    /// Bytes of a fully inflated VHD LV of `virtualSize` bytes (`calcSizeVHDLV`), before rounding
    /// to extents: the data, the metadata for at least 2 TiB, every block's bitmap.
    public static func inflated(virtualSize: UInt64) -> UInt64 {
        virtualSize + emptyOverhead(virtualSize: max(virtualSize, preallocatedVirtualSize)) + bitmapOverhead(virtualSize: virtualSize)
    }

    /// What `image` needs to reach `virtualSize` with every block written: `inflated`, or more
    /// when the image's own layout asks for it (data past its metadata plus the blocks it
    /// lacks, each appended at 4 KiB alignment with its bitmap, and, when its BAT must grow
    /// first, the blocks in the way of the new metadata appended again).
    public static func inflated(_ image: VHDImage, virtualSize: UInt64) -> UInt64 {
        let v = max(virtualSize, image.virtualSize)
        guard image.diskType != .fixed else { return v + 512 }
        let bs = UInt64(image.blockSize)
        let blocks = roundUp(v, bs) / bs
        let allocated = UInt64(image.allocatedBlockCount)
        let lacking = blocks > allocated ? blocks - allocated : 0
        let moved = v > Resize.fastLimit(image) ? emptyOverhead(virtualSize: v) / bs + 1 : 0
        let reach = roundUp(max(image.endOfData, image.endOfMetadata), 4096) + (lacking + moved) * (bs + 4096) + 512
        return max(inflated(virtualSize: v), reach)
    }

    /// What `image` needs to reach `virtualSize` without any new data block (`allocation=thin`
    /// for a leaf no host has active): its data and metadata, and, when its BAT must grow, the
    /// blocks in the way of the new metadata appended again.
    public static func deflated(_ image: VHDImage, virtualSize: UInt64) -> UInt64 {
        let v = max(virtualSize, image.virtualSize)
        guard image.diskType != .fixed else { return v + 512 }
        let bs = UInt64(image.blockSize)
        let moved = v > Resize.fastLimit(image) ? emptyOverhead(virtualSize: v) / bs + 1 : 0
        return roundUp(max(image.endOfData, image.endOfMetadata), 4096) + moved * (bs + 4096) + 512
    }

    /// Bytes a read-only (deflated) VHD LV keeps: its data and the footer after it.
    public static func deflated(_ image: VHDImage) -> UInt64 {
        image.diskType == .fixed ? image.virtualSize + 512 : max(image.endOfData, image.endOfMetadata) + 512
    }
}
