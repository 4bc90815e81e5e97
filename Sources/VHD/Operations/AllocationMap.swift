/// Which parts of a chain's virtual disk hold data in some image (the rest reads as zeros or,
/// with a raw parent, from the raw file).
public enum AllocationMap {
    /// A run of the map.
    public struct Extent: Sendable, Equatable, Codable {
        /// Byte offset in the virtual disk.
        public var offset: UInt64
        /// Length in bytes.
        public var length: UInt64
        /// Whether some image in the chain holds these sectors.
        public var allocated: Bool
    }

    /// Whether any image of the chain has storage for block `b` (the raw parent counts as
    /// allocated everywhere it has data).
    public static func blockAllocated(_ chain: VHDChain, _ b: Int) -> Bool {
        if chain.rawParent != nil { return true }
        let bs = UInt64(chain.leaf.blockSize)
        return chain.images.contains { image in
            // Images of a foreign chain may use another block size: look at every block of
            // theirs that overlaps the leaf's block b.
            let ibs = UInt64(image.blockSize)
            let first = Int(UInt64(b) * bs / ibs), last = Int((UInt64(b + 1) * bs - 1) / ibs)
            return (first...last).contains { $0 < image.blockCount && image.isAllocated($0) }
        }
    }

    /// The sector-exact map of `range` (default: the whole disk), adjacent runs merged.
    public static func extents(_ chain: VHDChain, in range: Range<UInt64>? = nil) throws -> [Extent] {
        let r = range ?? 0..<chain.virtualSize
        var out: [Extent] = []
        func add(_ offset: UInt64, _ length: UInt64, _ allocated: Bool) {
            guard length > 0 else { return }
            if var last = out.last, last.allocated == allocated, last.offset + last.length == offset {
                last.length += length; out[out.count - 1] = last
            } else {
                out.append(Extent(offset: offset, length: length, allocated: allocated))
            }
        }
        let bs = UInt64(chain.leaf.blockSize)
        var off = r.lowerBound
        while off < r.upperBound {
            let b = Int(off / bs)
            let blockEnd = min((UInt64(b) + 1) * bs, r.upperBound)
            if !blockAllocated(chain, b) {
                add(off, blockEnd - off, false)
            } else if chain.rawParent != nil
                        || chain.images.contains(where: { $0.diskType == .fixed || $0.blockSize != chain.leaf.blockSize }) {
                add(off, blockEnd - off, true)
            } else {
                let union = try unionBitmap(chain, b)
                let first = Int((off - UInt64(b) * bs) / 512)
                let last = Int((blockEnd - UInt64(b) * bs + 511) / 512)
                SectorBitmap.forEachRun(union, in: first..<last) { s, n, present in
                    let lo = max(off, UInt64(b) * bs + UInt64(s) * 512)
                    let hi = min(blockEnd, UInt64(b) * bs + UInt64(s + n) * 512)
                    add(lo, hi - lo, present)
                }
            }
            off = blockEnd
        }
        return out
    }

    /// The OR of the sector bitmaps of block `b` over the chain.
    static func unionBitmap(_ chain: VHDChain, _ b: Int) throws -> [UInt8] {
        var union = [UInt8](repeating: 0, count: chain.leaf.bitmapBytes)
        for image in chain.images where b < image.blockCount && image.isAllocated(b) {
            if image.batmapSaysFull(b) { return [UInt8](repeating: 0xff, count: union.count) }
            let m = try image.bitmap(b)
            for i in 0..<min(union.count, m.count) { union[i] |= m[i] }
        }
        return union
    }
}
