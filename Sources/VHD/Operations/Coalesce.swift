/// Merging a differencing child into its parent, sector-exact, as `vhd-util coalesce` does,
/// but block by block: each touched parent block is written once (data, then its bitmap), and
/// BAT, batmap and footer once at the end. The child is not modified.
///
/// Crash safety: parent data is written before the bitmap bits and BAT entries that expose it;
/// until the caller removes the child, the child still overlays every sector it held, so a
/// partly coalesced parent reads the same through the child.
public enum Coalesce {
    /// What was merged.
    public struct Result: Sendable, Equatable {
        /// Sectors copied from the child.
        public var sectors: UInt64
        /// Child blocks visited.
        public var blocks: Int
        /// The parent's path.
        public var parentPath: String
    }

    /// Merges `child` into its parent (a VHD, grown first if smaller, or a raw file).
    /// `progress(done, total)` is called after each block; `shouldCancel` is polled between blocks.
    @discardableResult
    public static func run(child childPath: String, provider: any StoreProvider,
                           progress: ((Int, Int) -> Void)? = nil,
                           shouldCancel: (() -> Bool)? = nil) throws -> Result {
        let child = try VHDImage(store: try provider.open(childPath, writable: false), path: childPath, writable: false)
        guard child.diskType == .differencing else {
            throw VHDError.unsupported(path: childPath, reason: "not a differencing disk")
        }
        let parentPath = try ParentResolver.resolve(child, provider: provider)
        if child.parentUUID.isNull {
            let raw = try provider.open(parentPath, writable: true)
            (raw as? FileStore)?.preferDirectIO = true
            (child.store as? FileStore)?.preferDirectIO = true
            // Like a VHD parent, the raw parent takes the child's size first.
            if raw.size < child.virtualSize { try raw.resize(to: child.virtualSize) }
            let sectors = try merge(child, progress: progress, shouldCancel: shouldCancel) { b, map, data, span in
                let base = UInt64(b) * UInt64(child.blockSize)
                try SectorBitmap.forEachRun(map, in: span) { start, count, present in
                    guard present else { return }
                    let lo = (start - span.lowerBound) * 512
                    try raw.write(UnsafeRawBufferPointer(rebasing: data[lo..<lo + count * 512]), at: base + UInt64(start) * 512)
                }
            }
            try raw.sync()
            return Result(sectors: sectors, blocks: child.blockCount, parentPath: parentPath)
        }
        var parent = try VHDImage(store: try provider.open(parentPath, writable: true), path: parentPath, writable: true)
        guard parent.footer.uuid == child.parentUUID else {
            throw VHDError.parentUUIDMismatch(path: childPath, parent: parentPath, expected: child.parentUUID.description,
                                              found: parent.footer.uuid.description)
        }
        if parent.virtualSize < child.virtualSize {
            // The parent takes the child's size first (journaled if its BAT must grow).
            try Resize.run(path: parentPath, size: child.virtualSize, provider: provider)
            parent = try VHDImage(store: try provider.open(parentPath, writable: true), path: parentPath, writable: true)
        }
        parent.deferMetadata = true
        // Parent writes bypass the page cache; child reads stay buffered so the kernel's
        // readahead keeps the next blocks coming while this one is written.
        (parent.store as? FileStore)?.preferDirectIO = true
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: parent.blockSize, alignment: 4096)
        defer { scratch.deallocate() }
        let sectors = try merge(child, progress: progress, shouldCancel: shouldCancel) { b, map, data, span in
            try mergeBlock(b, childMap: map, data: data, span: span, into: parent, scratch: scratch)
        }
        try parent.commit()
        try parent.store.sync()
        return Result(sectors: sectors, blocks: child.blockCount, parentPath: parentPath)
    }

    /// Walks the child's allocated blocks; for each, reads the span of sectors it holds and
    /// hands (block, bitmap, data of the span, span) to `apply`. Returns the sectors merged.
    static func merge(_ child: VHDImage, progress: ((Int, Int) -> Void)?, shouldCancel: (() -> Bool)?,
                      apply: (Int, [UInt8], UnsafeRawBufferPointer, Range<Int>) throws -> Void) throws -> UInt64 {
        let spb = child.sectorsPerBlock
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: child.blockSize, alignment: 4096)
        defer { buffer.deallocate() }
        let full = [UInt8](repeating: 0xff, count: child.bitmapBytes)
        var sectors: UInt64 = 0
        for b in 0..<child.blockCount {
            if shouldCancel?() == true { throw VHDError.cancelled }
            defer { progress?(b + 1, child.blockCount) }
            guard child.isAllocated(b) else { continue }
            // Sectors past the virtual size (the last block of an odd-sized disk) are not merged.
            let limit = Int(min(UInt64(spb), (child.virtualSize - UInt64(b) * UInt64(spb) * 512 + 511) / 512))
            let map = child.batmapSaysFull(b) ? full : try child.bitmap(b)
            guard let first = (0..<limit).first(where: { SectorBitmap.test(map, $0) }) else { continue }
            let last = (first..<limit).last(where: { SectorBitmap.test(map, $0) })!
            let span = first..<last + 1
            let bytes = span.count * 512
            let data = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<bytes])
            try child.store.read(into: data, at: child.dataOffset(block: b, sector: first))
            var clipped = map
            for s in limit..<spb where SectorBitmap.test(clipped, s) { clipped[s >> 3] &= ~(0x80 >> UInt8(s & 7)) }
            sectors += UInt64(SectorBitmap.population(clipped, count: limit))
            try apply(b, clipped, UnsafeRawBufferPointer(data), span)
        }
        return sectors
    }

    /// Writes the child's sectors of block `b` into `parent`: a new parent block gets the span
    /// in one write (sectors the child lacks zeroed); an existing one gets each run, or for
    /// many runs the span read, overlaid and written back once.
    static func mergeBlock(_ b: Int, childMap: [UInt8], data: UnsafeRawBufferPointer, span: Range<Int>,
                           into parent: VHDImage, scratch: UnsafeMutableRawBufferPointer) throws {
        var runs: [(Int, Int)] = []
        SectorBitmap.forEachRun(childMap, in: span) { s, n, present in if present { runs.append((s, n)) } }
        let spanBytes = span.count * 512
        let out = UnsafeMutableRawBufferPointer(rebasing: scratch[0..<spanBytes])
        if parent.entry(b) == VHDImage.unused {
            // A new parent block: the span (sectors the child lacks zeroed) with its final
            // bitmap, in two writes; the BAT entry follows at commit.
            if runs.count == 1 && runs[0] == (span.lowerBound, span.count) {
                return try parent.appendBlock(b, bitmap: childMap, data: data, firstSector: span.lowerBound)
            }
            out.initializeMemory(as: UInt8.self, repeating: 0)
            for (s, n) in runs {
                let lo = (s - span.lowerBound) * 512
                UnsafeMutableRawBufferPointer(rebasing: out[lo..<lo + n * 512])
                    .copyMemory(from: UnsafeRawBufferPointer(rebasing: data[lo..<lo + n * 512]))
            }
            return try parent.appendBlock(b, bitmap: childMap, data: UnsafeRawBufferPointer(out), firstSector: span.lowerBound)
        }
        if runs.count == 1 && runs[0] == (span.lowerBound, span.count) {
            try parent.store.write(data, at: parent.dataOffset(block: b, sector: span.lowerBound))
        } else if runs.count > 32 {
            try parent.store.read(into: out, at: parent.dataOffset(block: b, sector: span.lowerBound))
            for (s, n) in runs {
                let lo = (s - span.lowerBound) * 512
                UnsafeMutableRawBufferPointer(rebasing: out[lo..<lo + n * 512])
                    .copyMemory(from: UnsafeRawBufferPointer(rebasing: data[lo..<lo + n * 512]))
            }
            try parent.store.write(UnsafeRawBufferPointer(out), at: parent.dataOffset(block: b, sector: span.lowerBound))
        } else {
            for (s, n) in runs {
                let lo = (s - span.lowerBound) * 512
                try parent.store.write(UnsafeRawBufferPointer(rebasing: data[lo..<lo + n * 512]),
                                       at: parent.dataOffset(block: b, sector: s))
            }
        }
        if parent.batmapSaysFull(b) { return }
        var map = try parent.bitmap(b)
        for i in 0..<map.count { map[i] |= childMap[i] }
        try parent.storeBitmap(b, map)
    }
}
