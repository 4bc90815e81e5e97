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
        if !deferMetadata { try commit() }
        return pieces
    }

    /// Makes the sectors of planned writes whose data is written present: each block's bitmap
    /// written once with every run's bits, then the metadata committed (unless deferred).
    public func finishPlannedWrite(_ pieces: [PlannedSectors]) throws {
        guard writable else { throw VHDError.readOnly(path: path) }
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
        for b in order { try markPresent(b, ranges[b]!) }
        if !deferMetadata { try commit() }
    }
}
