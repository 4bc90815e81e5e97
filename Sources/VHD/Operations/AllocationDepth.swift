/// Which image of a chain each part of the virtual disk reads from, as NBD's
/// `qemu:allocation-depth` context reports it: 0 where no image holds the sectors (they read as
/// zeros), 1 where the leaf holds them, 2 for its parent, and so on; a raw parent counts as the
/// image below the last VHD.
public enum AllocationDepth {
    /// A run of sectors that read from the same image.
    public struct Extent: Sendable, Equatable {
        /// Byte offset in the virtual disk.
        public var offset: UInt64
        /// Length in bytes.
        public var length: UInt64
        /// 0: no image holds the run; n: the n-th image from the leaf (the leaf is 1).
        public var depth: UInt32

        /// A run of `length` bytes at `offset` read from image `depth`.
        public init(offset: UInt64, length: UInt64, depth: UInt32) {
            self.offset = offset
            self.length = length
            self.depth = depth
        }
    }

    /// The sector-exact depths of `range` (default: the whole disk), adjacent runs merged.
    /// Images whose blocks cannot be looked at sector by sector (fixed, another block size)
    /// count as holding the whole of every leaf block they hold any of: the depth reported is
    /// then never deeper than the one data is read from.
    public static func extents(_ chain: VHDChain, in range: Range<UInt64>? = nil) throws -> [Extent] {
        let r = range ?? 0..<chain.virtualSize
        let bs = UInt64(chain.leaf.blockSize)
        let sectorsPerBlock = Int(bs / 512)
        let rawDepth: UInt32 = chain.rawParent == nil ? 0 : UInt32(chain.images.count + 1)
        var out: [Extent] = []
        func add(_ offset: UInt64, _ length: UInt64, _ depth: UInt32) {
            guard length > 0 else { return }
            if var last = out.last, last.depth == depth, last.offset + last.length == offset {
                last.length += length
                out[out.count - 1] = last
            } else {
                out.append(Extent(offset: offset, length: length, depth: depth))
            }
        }
        var depths = [UInt32](repeating: 0, count: sectorsPerBlock)
        var off = r.lowerBound
        while off < r.upperBound {
            let b = Int(off / bs)
            let blockStart = UInt64(b) * bs
            let blockEnd = min(blockStart + bs, r.upperBound)
            for i in depths.indices { depths[i] = rawDepth }
            // From the root up, so that the image nearest the leaf writes last and wins.
            for (index, image) in chain.images.enumerated().reversed() {
                let depth = UInt32(index + 1)
                switch try holding(image, block: b, leafBlockSize: bs, sectors: sectorsPerBlock) {
                case .none:
                    continue
                case .all:
                    for i in depths.indices { depths[i] = depth }
                case let .sectors(bitmap):
                    for i in depths.indices where SectorBitmap.test(bitmap, i) { depths[i] = depth }
                }
            }
            var s = Int((off - blockStart) / 512)
            let last = Int((blockEnd - blockStart + 511) / 512)
            while s < last {
                var e = s + 1
                while e < last && depths[e] == depths[s] { e += 1 }
                let lo = max(off, blockStart + UInt64(s) * 512), hi = min(blockEnd, blockStart + UInt64(e) * 512)
                add(lo, hi - lo, depths[s])
                s = e
            }
            off = blockEnd
        }
        return out
    }

    /// What one image holds of leaf block `b`.
    private enum Holding {
        case none
        case all
        case sectors([UInt8])
    }

    private static func holding(_ image: VHDImage, block b: Int, leafBlockSize bs: UInt64, sectors: Int) throws -> Holding {
        if image.diskType == .fixed { return .all }
        let ibs = UInt64(image.blockSize)
        guard ibs == bs else {
            let first = Int(UInt64(b) * bs / ibs), last = Int((UInt64(b + 1) * bs - 1) / ibs)
            return (first...last).contains { $0 < image.blockCount && image.isAllocated($0) } ? .all : .none
        }
        guard b < image.blockCount, image.isAllocated(b) else { return .none }
        if image.batmapSaysFull(b) { return .all }
        let bitmap = try image.bitmap(b)
        return bitmap.count * 8 >= sectors ? .sectors(bitmap) : .all
    }
}
