/// A write in two halves, for a caller that sends the data itself (from other threads, several
/// writes in flight): `planWrite` allocates the blocks the sectors need and says where their
/// data goes; nothing becomes visible until `finishPlannedWrite` sets the bitmap bits, after
/// the data is written. blktap's ordering holds across the halves: a new block's zeroed bitmap
/// and BAT entry first, its data, then the bits that make the data visible.
extension VHDImage {
    /// Sectors of one block (or of a fixed disk) that a planned write puts at `storeOffset`.
    public struct PlannedSectors: Sendable, Equatable {
        /// The block whose bitmap takes the sectors, or nil for a fixed disk (no bitmap).
        public let block: Int?
        /// First sector within the block.
        public let first: Int
        /// Number of sectors.
        public let count: Int
        /// Where the data goes in the store.
        public let storeOffset: UInt64
        /// Where the data starts in the caller's buffer.
        public let bufferOffset: Int
    }

    /// Allocates what `count` sectors at `sector` need (gap, zeroed bitmap and BAT entry of each
    /// new block, written now unless metadata is deferred) and returns where each run of their
    /// data goes. The caller writes the data to the store, then calls `finishPlannedWrite`.
    public func planWrite(sector: UInt64, count: Int) throws -> [PlannedSectors] {
        guard writable else { throw VHDError.readOnly(path: path) }
        let bytes = UInt64(count) * 512
        guard sector * 512 <= virtualSize, bytes <= virtualSize - sector * 512 else {
            throw VHDError.outOfRange(offset: sector * 512, length: bytes, size: virtualSize)
        }
        if diskType == .fixed {
            return [PlannedSectors(block: nil, first: 0, count: count, storeOffset: sector * 512, bufferOffset: 0)]
        }
        let spb = UInt64(sectorsPerBlock)
        var pieces: [PlannedSectors] = []
        var done = 0
        var s = sector
        while done < count {
            let b = Int(s / spb)
            let first = Int(s % spb)
            let n = min(sectorsPerBlock - first, count - done)
            if entry(b) == Self.unused { try allocate(b) }
            pieces.append(PlannedSectors(block: b, first: first, count: n,
                                         storeOffset: dataOffset(block: b, sector: first), bufferOffset: done * 512))
            done += n
            s += UInt64(n)
        }
        // The BAT and footer now; a batmap changed by finished writes waits for the next commit.
        if !deferMetadata { try commitAllocation() }
        return pieces
    }

    /// Makes the sectors of planned writes whose data is written present: each block's bitmap
    /// written once with every run's bits, then the metadata committed (unless deferred).
    public func finishPlannedWrite(_ pieces: [PlannedSectors]) throws {
        guard writable else { throw VHDError.readOnly(path: path) }
        for (b, ranges) in try plannedRanges(pieces) { try markPresent(b, ranges) }
        if !deferMetadata { try commit() }
    }

    /// A block's bitmap as finished planned writes left it in memory, for a caller that writes
    /// it to the store itself (`presentPlannedWrite`).
    public struct PlannedBitmap: Sendable {
        /// The block.
        public let block: Int
        /// Its bitmap.
        public let bytes: [UInt8]
        /// Where the bitmap goes in the store.
        public let storeOffset: UInt64
    }

    /// As `finishPlannedWrite`, for a caller that writes the bitmaps itself (several at once,
    /// with no thread waiting): sets the bits of `pieces` in the cached bitmaps and returns each
    /// changed block's bitmap. Until the caller has written them all (then
    /// `plannedBitmapsWritten`), it writes no other bitmap of this image; when one failed, it
    /// calls `dropCaches`, so that the bits are read again from the store.
    public func presentPlannedWrite(_ pieces: [PlannedSectors]) throws -> [PlannedBitmap] {
        guard writable else { throw VHDError.readOnly(path: path) }
        var changed: [PlannedBitmap] = []
        for (b, ranges) in try plannedRanges(pieces) {
            if let map = try setCachedBits(b, ranges) {
                changed.append(PlannedBitmap(block: b, bytes: map, storeOffset: UInt64(entry(b)) * 512))
            }
        }
        return changed
    }

    /// Records that the bitmaps from `presentPlannedWrite` are in the store: the blocks they
    /// fill are marked full in the batmap, which the next `commit` writes (a batmap behind the
    /// bitmaps only sends readers to the bitmaps).
    public func plannedBitmapsWritten(_ bitmaps: [PlannedBitmap]) {
        guard batmapHeader != nil else { return }
        for m in bitmaps where SectorBitmap.isFull(m.bytes, count: sectorsPerBlock) { setBatmapBit(m.block) }
    }

    /// The sector ranges `pieces` set, by block in the order they first appear; throws when a
    /// piece is not within an allocated block.
    private func plannedRanges(_ pieces: [PlannedSectors]) throws -> [(Int, [Range<Int>])] {
        var ranges: [Int: [Range<Int>]] = [:]
        var order: [Int] = []
        for p in pieces {
            guard let b = p.block else { continue }
            guard b < maxTableEntries, entry(b) != Self.unused, p.first >= 0, p.count >= 0,
                  p.first + p.count <= sectorsPerBlock else {
                throw VHDError.invalidArgument("planned sectors \(p.first)+\(p.count) of block \(b) are not allocated")
            }
            if ranges[b] == nil { order.append(b) }
            ranges[b, default: []].append(p.first..<p.first + p.count)
        }
        return order.map { ($0, ranges[$0]!) }
    }
}
