/// A leaf VHD and its ancestors, read and written as one virtual disk.
///
/// Reads walk from the leaf: a sector comes from the first image whose bitmap holds it, a raw
/// parent, or zeros. Writes go to the leaf only, sector-granular (unaligned writes are read,
/// merged and written back whole sectors).
public final class VHDChain {
    /// The VHDs, leaf first.
    public let images: [VHDImage]
    /// A raw (non-VHD) parent at the root, if any.
    public let rawParent: (any BlockStore)?
    /// Path of the raw parent.
    public let rawParentPath: String?
    /// The namespace the chain was opened in.
    public let provider: any StoreProvider

    /// The image that takes writes.
    public var leaf: VHDImage { images[0] }
    /// Virtual size of the disk (the leaf's).
    public var virtualSize: UInt64 { leaf.virtualSize }
    /// Number of VHDs in the chain.
    public var depth: Int { images.count }

    /// Opens `path` and every ancestor; the leaf read-write when asked, ancestors read-only.
    public init(path: String, provider: any StoreProvider, writable: Bool = false, maxDepth: Int = 64,
                verifyParentUUIDs: Bool = true) throws {
        self.provider = provider
        var images: [VHDImage] = []
        var seen: Set<String> = []
        var current = path
        var raw: (any BlockStore)? = nil
        var rawPath: String? = nil
        while true {
            let canonical = provider.canonical(current)
            guard seen.insert(canonical).inserted else { throw VHDError.chainCycle(path: current) }
            guard images.count < maxDepth else { throw VHDError.chainTooDeep(path: path, limit: maxDepth) }
            let image = try VHDImage(store: try provider.open(current, writable: writable && images.isEmpty),
                                     path: current, writable: writable && images.isEmpty)
            if let child = images.last, verifyParentUUIDs, image.footer.uuid != child.parentUUID {
                throw VHDError.parentUUIDMismatch(path: child.path, parent: current,
                                                  expected: child.parentUUID.description, found: image.footer.uuid.description)
            }
            images.append(image)
            guard image.diskType == .differencing else { break }
            let parentPath = try ParentResolver.resolve(image, provider: provider)
            if image.parentUUID.isNull {
                guard seen.insert(provider.canonical(parentPath)).inserted else { throw VHDError.chainCycle(path: parentPath) }
                raw = try provider.open(parentPath, writable: false)
                rawPath = parentPath
                break
            }
            current = parentPath
        }
        self.images = images
        self.rawParent = raw
        self.rawParentPath = rawPath
    }

    /// Paths of the chain, leaf first (the raw parent last if any).
    public var paths: [String] { images.map(\.path) + (rawParentPath.map { [$0] } ?? []) }

    // MARK: - Reading

    /// Reads `buffer.count` bytes of the virtual disk at `offset` (any alignment).
    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        guard offset <= virtualSize, UInt64(buffer.count) <= virtualSize - offset else {
            throw VHDError.outOfRange(offset: offset, length: UInt64(buffer.count), size: virtualSize)
        }
        guard buffer.count > 0 else { return }
        if offset % 512 == 0 && buffer.count % 512 == 0 {
            return try readSectors(layer: 0, into: buffer, sector: offset / 512)
        }
        let start = offset / 512 * 512
        let end = roundUp(offset + UInt64(buffer.count), to: 512)
        let tmp = UnsafeMutableRawBufferPointer.allocate(byteCount: Int(end - start), alignment: 4096)
        defer { tmp.deallocate() }
        try readSectors(layer: 0, into: tmp, sector: start / 512)
        let skip = Int(offset - start)
        buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: tmp[skip..<skip + buffer.count]))
    }

    /// One piece of a read mapped onto the chain's stores.
    public enum ReadSegment {
        /// `count` bytes at `offset` of `store` go to the buffer at `at`.
        case data(store: any BlockStore, offset: UInt64, at: Int, count: Int)
        /// `count` bytes at `at` of the buffer read as zeros.
        case zero(at: Int, count: Int)
    }

    /// Maps `count` bytes (whole sectors) at `sector` onto the stores that hold them, in buffer
    /// order: the chain walk of every read, shared by `read` and callers that do their own I/O
    /// (the data path reads pieces on several threads).
    public func mapRead(sector: UInt64, count: Int, _ visit: (ReadSegment) throws -> Void) throws {
        try map(layer: 0, at: 0, count: count, sector: sector, visit)
    }

    func map(layer: Int, at: Int, count: Int, sector: UInt64, _ visit: (ReadSegment) throws -> Void) throws {
        let start = sector * 512
        if layer == images.count {
            guard let raw = rawParent else { return try visit(.zero(at: at, count: count)) }
            let available = start >= raw.size ? 0 : Int(min(UInt64(count), raw.size - start))
            if available > 0 { try visit(.data(store: raw, offset: start, at: at, count: available)) }
            if available < count { try visit(.zero(at: at + available, count: count - available)) }
            return
        }
        let image = images[layer]
        // Beyond this image's size (a child larger than its parent): zeros.
        let inside = start >= image.virtualSize ? 0 : Int(min(UInt64(count), image.virtualSize - start))
        if inside > 0 {
            if image.diskType == .fixed {
                try visit(.data(store: image.store, offset: start, at: at, count: inside))
            } else {
                let spb = UInt64(image.sectorsPerBlock)
                var done = 0
                var s = sector
                while done < inside {
                    let b = Int(s / spb)
                    let first = Int(s % spb)
                    let n = min(image.sectorsPerBlock - first, (inside - done + 511) / 512)
                    let base = done
                    try image.forEachRun(block: b, from: first, count: n) { runStart, runCount, present in
                        let lo = base + (runStart - first) * 512
                        let hi = min(lo + runCount * 512, inside)
                        if present {
                            try visit(.data(store: image.store, offset: image.dataOffset(block: b, sector: runStart),
                                            at: at + lo, count: hi - lo))
                        } else {
                            try map(layer: layer + 1, at: at + lo, count: hi - lo, sector: UInt64(b) * spb + UInt64(runStart), visit)
                        }
                    }
                    done += n * 512
                    s += UInt64(n)
                }
            }
        }
        if inside < count { try visit(.zero(at: at + inside, count: count - inside)) }
    }

    /// Reads whole sectors through the chain.
    func readSectors(layer: Int, into buffer: UnsafeMutableRawBufferPointer, sector: UInt64) throws {
        try map(layer: layer, at: 0, count: buffer.count, sector: sector) { segment in
            switch segment {
            case let .data(store, offset, at, count):
                try store.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[at..<at + count]), at: offset)
            case let .zero(at, count):
                UnsafeMutableRawBufferPointer(rebasing: buffer[at..<at + count]).initializeMemory(as: UInt8.self, repeating: 0)
            }
        }
    }

    // MARK: - Writing

    /// Writes `data` at `offset` into the leaf (any alignment).
    public func write(_ data: UnsafeRawBufferPointer, at offset: UInt64) throws {
        guard offset <= virtualSize, UInt64(data.count) <= virtualSize - offset else {
            throw VHDError.outOfRange(offset: offset, length: UInt64(data.count), size: virtualSize)
        }
        guard data.count > 0 else { return }
        if offset % 512 == 0 && data.count % 512 == 0 {
            return try leaf.write(data, atSector: offset / 512)
        }
        let start = offset / 512 * 512
        let end = roundUp(offset + UInt64(data.count), to: 512)
        let tmp = UnsafeMutableRawBufferPointer.allocate(byteCount: Int(end - start), alignment: 4096)
        defer { tmp.deallocate() }
        // Only the partial head and tail sectors need the old contents.
        try readSectors(layer: 0, into: UnsafeMutableRawBufferPointer(rebasing: tmp[0..<512]), sector: start / 512)
        if end - start > 512 {
            try readSectors(layer: 0, into: UnsafeMutableRawBufferPointer(rebasing: tmp[tmp.count - 512..<tmp.count]),
                            sector: end / 512 - 1)
        }
        let skip = Int(offset - start)
        UnsafeMutableRawBufferPointer(rebasing: tmp[skip..<skip + data.count]).copyMemory(from: data)
        try leaf.write(UnsafeRawBufferPointer(tmp), atSector: start / 512)
    }

    /// Convenience: reads `count` bytes at `offset` into an array.
    public func read(count: Int, at offset: UInt64) throws -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        try out.withUnsafeMutableBytes { try read(into: $0, at: offset) }
        return out
    }

    /// Convenience: writes an array at `offset`.
    public func write(_ bytes: [UInt8], at offset: UInt64) throws {
        try bytes.withUnsafeBytes { try write($0, at: offset) }
    }

    /// Writes pending metadata and makes the leaf durable.
    public func flush() throws {
        try leaf.commit()
        try leaf.store.sync()
    }
}
