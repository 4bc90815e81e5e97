/// Merging a differencing child into its parent, sector-exact, as `vhd-util coalesce` does,
/// but block by block: each touched parent block is written once (data, then its bitmap), and
/// BAT, batmap and footer once at the end. The child is not modified.
///
/// Crash safety: parent data is written before the bitmap bits and BAT entries that expose it;
/// until the caller removes the child, the child still overlays every sector it held, so a
/// partly coalesced parent reads the same through the child.
///
/// The child's blocks are read ahead (`BlockPrefetcher`: reader threads for a file); every parent
/// write stays on the calling thread, in block order, so the ordering above is unchanged.
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
    /// `progress(done, total)` is called after each block; `shouldCancel` is polled between blocks;
    /// `merged(bytes)` is called on the calling thread after each merged block with the child's
    /// bytes it merged (sectors × 512), and may sleep (to cap bandwidth).
    @discardableResult
    public static func run(child childPath: String, provider: any StoreProvider,
                           progress: ((Int, Int) -> Void)? = nil,
                           shouldCancel: (() -> Bool)? = nil,
                           merged: ((UInt64) -> Void)? = nil) throws -> Result {
        let child = try VHDImage(store: try provider.open(childPath, writable: false), path: childPath, writable: false)
        guard child.diskType == .differencing else {
            throw VHDError.unsupported(path: childPath, reason: "not a differencing disk")
        }
        let parentPath = try ParentResolver.resolve(child, provider: provider)
        let blockCount = child.blockCount
        if child.parentUUID.isNull {
            let raw = try provider.open(parentPath, writable: true)
            (raw as? any DirectIOStore)?.preferDirectIO = true
            // Like a VHD parent, the raw parent takes the child's size first.
            if raw.size < child.virtualSize { try raw.resize(to: child.virtualSize) }
            let blockBytes = UInt64(child.blockSize)
            let sectors = try merge(child, progress: progress, shouldCancel: shouldCancel, merged: merged) { blk in
                let base = UInt64(blk.block) * blockBytes
                try SectorBitmap.forEachRun(blk.map, in: blk.span) { start, count, present in
                    guard present else { return }
                    let lo = (start - blk.read.lowerBound) * 512
                    try raw.write(UnsafeRawBufferPointer(rebasing: blk.data[lo..<lo + count * 512]), at: base + UInt64(start) * 512)
                }
            }
            try raw.sync()
            return Result(sectors: sectors, blocks: blockCount, parentPath: parentPath)
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
        // Parent data goes with direct I/O (4 KiB-aligned writes); the child's blocks are read
        // ahead (on a reader thread for files) while each one is written.
        (parent.store as? any DirectIOStore)?.preferDirectIO = true
        var scratch: UnsafeMutableRawBufferPointer?
        defer { scratch?.deallocate() }
        let sectors = try merge(child, progress: progress, shouldCancel: shouldCancel, merged: merged) { blk in
            try mergeBlock(blk, into: parent) {
                if let s = scratch { return s }
                let s = UnsafeMutableRawBufferPointer.allocate(byteCount: parent.blockSize, alignment: 4096)
                scratch = s
                return s
            }
        }
        try parent.commit()
        try parent.store.sync()
        return Result(sectors: sectors, blocks: blockCount, parentPath: parentPath)
    }

    /// Walks the child's blocks: hands each allocated one holding sectors, read ahead by a
    /// `BlockPrefetcher`, to `apply`; reports each block and polls `shouldCancel` between
    /// blocks. The child must not be touched elsewhere until this returns. Returns the sectors merged.
    static func merge(_ child: VHDImage, progress: ((Int, Int) -> Void)?, shouldCancel: (() -> Bool)?,
                      merged: ((UInt64) -> Void)?, apply: (ChildBlock) throws -> Void) throws -> UInt64 {
        let count = child.blockCount
        let prefetcher = try BlockPrefetcher(child: child)
        // Every way out (done, cancelled, an error on either side) stops and joins the readers.
        defer { prefetcher.stop() }
        var pending: ChildBlock?
        var exhausted = false
        var sectors: UInt64 = 0
        for b in 0..<count {
            if shouldCancel?() == true { throw VHDError.cancelled }
            defer { progress?(b + 1, count) }
            if pending == nil && !exhausted {
                pending = try prefetcher.next()
                exhausted = pending == nil
            }
            guard let blk = pending, blk.block == b else { continue }
            pending = nil
            try apply(blk)
            prefetcher.release(blk)
            sectors += UInt64(blk.sectors)
            merged?(UInt64(blk.sectors) * 512)
        }
        return sectors
    }

    /// Writes the child's sectors of `blk` into `parent`: a new parent block gets the sectors
    /// read (those the child lacks zeroed, in place) in one 4 KiB-aligned write after its gap
    /// and final bitmap; an existing one gets each run, or for many runs the aligned range read,
    /// overlaid and written back once, then its bitmap. `scratch` gives a block-sized buffer.
    static func mergeBlock(_ blk: ChildBlock, into parent: VHDImage,
                           scratch: () -> UnsafeMutableRawBufferPointer) throws {
        let b = blk.block
        let data = blk.data
        let base = blk.read.lowerBound
        if parent.entry(b) == VHDImage.unused {
            // The BAT entry follows at commit, so nothing exposes the block before its data.
            SectorBitmap.forEachRun(blk.map, in: blk.read) { s, n, present in
                guard !present else { return }
                UnsafeMutableRawBufferPointer(rebasing: data[(s - base) * 512..<(s - base + n) * 512])
                    .initializeMemory(as: UInt8.self, repeating: 0)
            }
            return try parent.appendBlock(b, bitmap: blk.map, data: UnsafeRawBufferPointer(data), firstSector: base)
        }
        var runs: [(Int, Int)] = []
        SectorBitmap.forEachRun(blk.map, in: blk.span) { s, n, present in if present { runs.append((s, n)) } }
        if runs.count == 1 {
            let lo = (blk.span.lowerBound - base) * 512
            try parent.store.write(UnsafeRawBufferPointer(rebasing: data[lo..<lo + blk.span.count * 512]),
                                   at: parent.dataOffset(block: b, sector: blk.span.lowerBound))
        } else if runs.count > 32 {
            let out = UnsafeMutableRawBufferPointer(rebasing: scratch()[0..<data.count])
            try parent.store.read(into: out, at: parent.dataOffset(block: b, sector: base))
            for (s, n) in runs {
                let lo = (s - base) * 512
                UnsafeMutableRawBufferPointer(rebasing: out[lo..<lo + n * 512])
                    .copyMemory(from: UnsafeRawBufferPointer(rebasing: data[lo..<lo + n * 512]))
            }
            try parent.store.write(UnsafeRawBufferPointer(out), at: parent.dataOffset(block: b, sector: base))
        } else {
            for (s, n) in runs {
                let lo = (s - base) * 512
                try parent.store.write(UnsafeRawBufferPointer(rebasing: data[lo..<lo + n * 512]),
                                       at: parent.dataOffset(block: b, sector: s))
            }
        }
        if parent.batmapSaysFull(b) { return }
        var map = try parent.bitmap(b)
        for i in 0..<map.count { map[i] |= blk.map[i] }
        try parent.storeBitmap(b, map)
    }
}
