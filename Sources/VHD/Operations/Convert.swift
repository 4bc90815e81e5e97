/// Raw images to VHD and back, sparse both ways: all-zero blocks are not stored, holes in the
/// source are skipped without reading them.
public enum Convert {
    /// What a conversion moved.
    public struct Result: Sendable, Equatable {
        /// Virtual size of the disk.
        public var virtualSize: UInt64
        /// Blocks written.
        public var blocksWritten: Int
        /// Blocks in the disk.
        public var blocks: Int
    }

    /// Whether every byte of `buffer` is zero (word at a time).
    public static func isZero(_ buffer: UnsafeRawBufferPointer) -> Bool {
        let words = buffer.count / 8
        let base = buffer.baseAddress!
        var i = 0
        while i + 4 <= words {
            let a = base.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self)
            let b = base.loadUnaligned(fromByteOffset: i * 8 + 8, as: UInt64.self)
            let c = base.loadUnaligned(fromByteOffset: i * 8 + 16, as: UInt64.self)
            let d = base.loadUnaligned(fromByteOffset: i * 8 + 24, as: UInt64.self)
            if a | b | c | d != 0 { return false }
            i += 4
        }
        while i < words { if base.loadUnaligned(fromByteOffset: i * 8, as: UInt64.self) != 0 { return false }; i += 1 }
        for j in words * 8..<buffer.count where buffer[j] != 0 { return false }
        return true
    }

    /// Whether `[offset, offset+length)` of `store` is known to be a hole (no data to read).
    static func isHole(_ store: any BlockStore, _ offset: UInt64, _ length: UInt64) -> Bool {
        guard let file = store as? any HoleMapStore, !file.isBlockDevice else { return false }
        guard let next = file.nextData(from: offset) else { return true }
        return next >= offset + length
    }

    /// Converts the raw image `source` into a new VHD `destination` (dynamic unless `fixed`).
    @discardableResult
    public static func rawToVHD(source: String, destination: String, provider: any StoreProvider, fixed: Bool = false,
                                progress: ((Int, Int) -> Void)? = nil) throws -> Result {
        let src = try provider.open(source, writable: false)
        (src as? any DirectIOStore)?.preferDirectIO = true
        let size = try Create.validatedSize(max(src.size, 1))
        if fixed { try Create.fixed(at: destination, size: size, provider: provider) } else {
            try Create.dynamic(at: destination, size: size, provider: provider)
        }
        let image = try VHDImage(store: try provider.open(destination, writable: true), path: destination, writable: true)
        (image.store as? any DirectIOStore)?.preferDirectIO = true
        image.deferMetadata = true
        let bs = image.blockSize
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: bs, alignment: 4096)
        defer { buffer.deallocate() }
        var written = 0
        for b in 0..<image.blockCount {
            defer { progress?(b + 1, image.blockCount) }
            let off = UInt64(b) * UInt64(bs)
            if off >= src.size || isHole(src, off, UInt64(bs)) { continue }
            try src.readZeroFilled(into: buffer, at: off)
            if isZero(UnsafeRawBufferPointer(buffer)) { continue }
            if fixed {
                try image.store.write(UnsafeRawBufferPointer(buffer), at: off)
            } else {
                try image.appendFullBlock(b, data: UnsafeRawBufferPointer(buffer))
            }
            written += 1
        }
        try image.commit()
        try image.store.sync()
        return Result(virtualSize: size, blocksWritten: written, blocks: image.blockCount)
    }

    /// Writes the virtual disk of the chain at `source` into a new sparse raw file `destination`.
    @discardableResult
    public static func vhdToRaw(source: String, destination: String, provider: any StoreProvider,
                                progress: ((Int, Int) -> Void)? = nil) throws -> Result {
        let chain = try VHDChain(path: source, provider: provider)
        let dst = try provider.create(destination)
        (dst as? any DirectIOStore)?.preferDirectIO = true
        for image in chain.images { (image.store as? any DirectIOStore)?.preferDirectIO = true }
        try dst.resize(to: chain.virtualSize)
        var written = 0
        let blocks = try stream(chain, progress: progress) { offset, data in
            try dst.write(data, at: offset)
            written += 1
        }
        try dst.sync()
        return Result(virtualSize: chain.virtualSize, blocksWritten: written, blocks: blocks)
    }

    /// Reads the chain block by block and hands every block holding non-zero data to `sink`
    /// with its virtual offset (zero blocks are skipped); returns the number of blocks.
    @discardableResult
    public static func stream(_ chain: VHDChain, includeZeros: Bool = false, progress: ((Int, Int) -> Void)? = nil,
                              sink: (UInt64, UnsafeRawBufferPointer) throws -> Void) throws -> Int {
        let bs = UInt64(chain.leaf.blockSize)
        let blocks = Int((chain.virtualSize + bs - 1) / bs)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Int(bs), alignment: 4096)
        defer { buffer.deallocate() }
        for b in 0..<blocks {
            defer { progress?(b + 1, blocks) }
            let off = UInt64(b) * bs
            let n = Int(min(bs, chain.virtualSize - off))
            let part = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<n])
            if AllocationMap.blockAllocated(chain, b) {
                try chain.read(into: part, at: off)
                if !includeZeros && isZero(UnsafeRawBufferPointer(part)) { continue }
            } else {
                guard includeZeros else { continue }
                part.initializeMemory(as: UInt8.self, repeating: 0)
            }
            try sink(off, UnsafeRawBufferPointer(part))
        }
        return blocks
    }
}
