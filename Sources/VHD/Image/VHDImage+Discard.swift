/// Discard (TRIM): giving the file space of a range of the virtual disk back to the filesystem.
///
/// Only the data areas of blocks this image already has are punched, shrunk inward to whole
/// 4 KiB pages of the file; sector bitmaps, BAT, batmap, headers, locators and footers are never
/// touched and no metadata changes. So every sector reads from the same image as before: one
/// this image holds reads zeros where its page was punched (the contents of a discarded range
/// are unspecified, zeros included), one it does not hold still reads from the parents, and a
/// partial page at either edge of the range keeps its data. Nothing is allocated or moved,
/// which is why mappings learnt from the image (a reader's block map) stay valid.
extension VHDImage {
    /// Granularity of the file ranges discard punches (filesystem pages).
    public static let discardAlignment: UInt64 = 4096

    /// The file ranges a discard of virtual bytes `range` punches: for each block of this image
    /// that is allocated and meets `range`, the part of its data area under `range`, shrunk
    /// inward to `discardAlignment`; in file order for ascending blocks, none empty.
    public func discardRanges(in range: Range<UInt64>) -> [Range<UInt64>] {
        let a = Self.discardAlignment
        let lo = range.lowerBound, hi = min(range.upperBound, virtualSize)
        guard lo < hi else { return [] }
        func inward(_ r: Range<UInt64>) -> Range<UInt64>? {
            let start = roundUp(r.lowerBound, to: a), end = r.upperBound / a * a
            return start < end ? start..<end : nil
        }
        // A fixed disk's data is the start of the file, byte for byte.
        if diskType == .fixed { return inward(lo..<hi).map { [$0] } ?? [] }
        let bs = UInt64(blockSize)
        var out: [Range<UInt64>] = []
        for b in Int(lo / bs)...Int((hi - 1) / bs) where b < maxTableEntries && entry(b) != Self.unused {
            let blockStart = UInt64(b) * bs
            let from = max(lo, blockStart) - blockStart, to = min(hi, blockStart + bs) - blockStart
            let data = dataOffset(block: b, sector: 0)
            if let r = inward(data + from..<data + to) { out.append(r) }
        }
        return out
    }

    /// Punches the file ranges of `discardRanges(in: range)` through the store; returns the
    /// bytes given back (0 when the store cannot punch: then it kept every byte). Throws
    /// `outOfRange` past the virtual size and `readOnly` on an image opened read-only.
    @discardableResult
    public func discard(_ range: Range<UInt64>) throws -> UInt64 {
        guard writable else { throw VHDError.readOnly(path: path) }
        guard range.upperBound <= virtualSize else {
            throw VHDError.outOfRange(offset: range.lowerBound, length: UInt64(range.count), size: virtualSize)
        }
        var released: UInt64 = 0
        for r in discardRanges(in: range) {
            guard try store.discard(offset: r.lowerBound, count: UInt64(r.count)) else { return released }
            released += UInt64(r.count)
        }
        return released
    }
}

extension VHDChain {
    /// Discards `length` bytes of the virtual disk at `offset` in the leaf (`VHDImage.discard`;
    /// parents are never touched); returns the bytes of the leaf file given back.
    @discardableResult
    public func discard(offset: UInt64, length: UInt64) throws -> UInt64 {
        guard offset <= virtualSize, length <= virtualSize - offset else {
            throw VHDError.outOfRange(offset: offset, length: length, size: virtualSize)
        }
        return try leaf.discard(offset..<offset + length)
    }
}
