import VHD

/// The room on the SR that merging a VHD into its parent takes, worked out from the two images'
/// metadata the way the VHD engine lays a merge out: each block the child has and the parent
/// lacks is appended to the parent (its sector bitmap, then its data 4 KiB-aligned); a parent
/// smaller than the child whose BAT cannot address the new size first grows its metadata (the
/// blocks in the way move to the end of the file, a resize journal is written beside it); a
/// snapshot round of a leaf coalesce also makes a new empty leaf; and a block both have fills
/// the holes of the parent's sparse file under the child's sectors (blocks written in part,
/// or trimmed). The
/// figure is an upper bound: a child block allocated without any sector in it is not merged,
/// and a new block is counted whole though only its written sectors take space.
public struct CoalesceSpace: Sendable, Equatable {
    /// Child blocks the parent lacks (each appended to the parent).
    public var newBlocks = 0
    /// Bytes the parent file grows by taking those blocks.
    public var merge: UInt64 = 0
    /// Bytes the parent file grows by when its BAT must grow first (0 when it need not).
    public var resize: UInt64 = 0
    /// Bytes of the resize journal written while the BAT grows (removed before the merge).
    public var resizeJournal: UInt64 = 0
    /// Bytes of the new empty leaf of a snapshot round (0 for a plain merge).
    public var newLeaf: UInt64 = 0
    /// Bytes of holes in the parent file under blocks both images have, which the merge may fill.
    public var holes: UInt64 = 0

    /// Nothing needed.
    public init() {}

    /// Bytes the parent file grows by in all.
    public var parentGrowth: UInt64 { resize + merge + holes }

    /// Free bytes the step needs at its peak (the resize journal is gone before the merge starts).
    public var total: UInt64 { newLeaf + resize + max(resizeJournal, merge + holes) }

    /// The room merging `child` (a differencing image) into `parent`, both opened with their BATs,
    /// takes: the parent growing first if it is smaller, then taking the blocks it lacks.
    public init(merging child: VHDImage, into parent: VHDImage) throws {
        // A fixed parent is written in place: it never grows but by a resize, which leaves a hole.
        guard parent.diskType != .fixed, parent.header != nil else { return }
        var end = parent.endOfData
        if parent.virtualSize < child.virtualSize {
            let target = try Create.validatedSize(child.virtualSize)
            if target > Resize.fastLimit(parent) {
                let grown = Self.metadataGrowth(parent, to: target)
                end = grown.endOfData
                resizeJournal = grown.journal
            }
        }
        resize = end - parent.endOfData
        var lacking = 0
        var shared: [Int] = []
        for b in 0..<child.blockCount where child.isAllocated(b) {
            // Entries past the BAT's capacity (padding) read as allocated: the capacity comes first.
            if b >= parent.maxTableEntries || parent.entry(b) == VHDImage.unused { lacking += 1 } else { shared.append(b) }
        }
        newBlocks = lacking
        // A parent file without holes from its first shared block on (the usual case) needs no
        // walk; otherwise each shared block counts the holes under the child's sectors.
        if let first = shared.map({ parent.dataOffset(block: $0, sector: 0) }).min(),
           parent.store.unallocatedBytes(in: first..<parent.endOfData) > 0 {
            for b in shared { holes += try parent.holeBytes(fillingBlock: b, from: child) }
        }
        merge = Self.appending(lacking, to: end, blockSize: parent.blockSize, bitmapBytes: parent.bitmapBytes) - end
    }

    /// The room a snapshot round of leaf `leaf` over `parent` takes: the leaf's data becomes a
    /// base copy (its file renamed) over which a new empty leaf is made, then the base is merged
    /// into `parent`. `baseVolume` is the base's volume name (the new leaf's locators hold it).
    public init(snapshotRoundOf leaf: VHDImage, into parent: VHDImage, baseVolume: String) throws {
        try self.init(merging: leaf, into: parent)
        newLeaf = Self.emptyLeafBytes(virtualSize: leaf.virtualSize, parentVolume: baseVolume)
    }

    /// The end of data after appending `count` blocks to an image whose data ends at `end`: each
    /// block's bitmap goes where its data then starts 4 KiB-aligned (as `VHDImage` places them).
    static func appending(_ count: Int, to end: UInt64, blockSize: Int, bitmapBytes: Int) -> UInt64 {
        guard count > 0 else { return end }
        func next(_ end: UInt64) -> UInt64 {
            let start = end / 512
            let bitmapSectors = UInt64(bitmapBytes / 512)
            let gap = (8 - (start + bitmapSectors) % 8) % 8
            return (start + gap + bitmapSectors) * 512 + UInt64(blockSize)
        }
        let first = next(end)
        guard count > 1 else { return first }
        // From the first block on, every block ends 4 KiB-aligned: the same stride each time.
        let stride = next(first) - first
        return first + stride * UInt64(count - 1)
    }

    /// What growing `parent`'s BAT for `size` bytes does to its file (as `Resize` does it): the
    /// new metadata (BAT, batmap, parent locators) ends further on, the blocks starting before
    /// that end are appended anew, and the new layout is journaled first. Returns the new end of
    /// data and the journal's size.
    static func metadataGrowth(_ parent: VHDImage, to size: UInt64) -> (endOfData: UInt64, journal: UInt64) {
        guard let header = parent.header else { return (parent.endOfData, 0) }
        let entries = UInt32((size + UInt64(parent.blockSize) - 1) / UInt64(parent.blockSize))
        let batBytes = roundedUp(UInt64(entries) * 4, to: 512)
        // Journal: magic, end of data, footer, header, piece count, the pieces (offset, length,
        // bytes each), checksum.
        var journal: UInt64 = 8 + 8 + 512 + 1024 + 8 + 4
        journal += 16 + batBytes
        var metadataEnd = header.tableOffset + batBytes
        if parent.batmapHeader != nil {
            let mapBytes = UInt64(BatmapHeader.sectors(forEntries: entries)) * 512
            journal += 16 + 512 + 16 + mapBytes
            metadataEnd += 512 + mapBytes
        }
        for locator in header.locators where locator.rawCode != 0 {
            let space = locator.spaceInBytes ?? 512
            journal += 16 + space
            metadataEnd += space
        }
        var end = parent.endOfData
        if metadataEnd > end { end = roundedUp(metadataEnd, to: 512) }
        var moved = 0
        for b in 0..<parent.maxTableEntries where parent.entry(b) != VHDImage.unused && UInt64(parent.entry(b)) * 512 < metadataEnd {
            moved += 1
        }
        end = appending(moved, to: end, blockSize: parent.blockSize, bitmapBytes: parent.bitmapBytes)
        return (max(end, metadataEnd), journal)
    }

    /// Bytes of a new empty differencing leaf of `virtualSize` bytes over volume `parentVolume` in
    /// the same folder, laid out as the engine makes it: header, BAT, batmap, one locator area for
    /// each of the three parent locators, footers at both ends.
    public static func emptyLeafBytes(virtualSize: UInt64, parentVolume: String) -> UInt64 {
        let entries = UInt32((virtualSize + UInt64(DynamicHeader.defaultBlockSize) - 1) / UInt64(DynamicHeader.defaultBlockSize))
        let header = DynamicHeader(maxTableEntries: entries)
        var end = header.tableOffset + header.batBytes + 512 + UInt64(BatmapHeader.sectors(forEntries: entries)) * 512
        for code in [ParentLocator.Code.macx, .w2ku, .w2ru] {
            let payload = ParentLocator.payload(code: code, relativePath: "./" + parentVolume)
            end += roundedUp(UInt64(max(payload.count, 1)), to: 512)
        }
        return end + 512
    }

    static func roundedUp(_ value: UInt64, to unit: UInt64) -> UInt64 { (value + unit - 1) / unit * unit }
}
