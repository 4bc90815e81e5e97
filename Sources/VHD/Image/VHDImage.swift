/// One open VHD file (fixed, dynamic or differencing): its metadata and its own sectors.
///
/// Reading through parents is `VHDChain`'s job; an image only knows which sectors it holds.
/// Writes follow blktap's ordering: a new block's zeroed bitmap and its data are written before
/// the bitmap bits and the BAT entry that make them visible, so a crash never exposes unwritten
/// data; the footer is rewritten at the new end of data after allocations.
public final class VHDImage {
    /// Sectors are 512 bytes.
    public static let sectorSize = 512
    /// BAT value of an unallocated block.
    public static let unused: UInt32 = 0xFFFF_FFFF

    /// Largest BAT accepted (4 Mi entries: 8 TiB of 2 MiB blocks, four times what a VHD can
    /// address), so no allocation is sized by an absurd field.
    public static let maxTableEntriesAccepted: UInt32 = 1 << 22

    /// The path the image was opened under (for messages and parent resolution).
    public let path: String
    /// The bytes of the image.
    public let store: any BlockStore
    /// Whether writes are allowed.
    public let writable: Bool
    /// The footer in force.
    public private(set) var footer: Footer
    /// Which footer copy was valid at open.
    public private(set) var footerSource: FooterSource
    /// The dynamic header (nil for fixed disks).
    public private(set) var header: DynamicHeader?
    /// The batmap header, when one is present.
    public private(set) var batmapHeader: BatmapHeader?
    /// Whether the batmap is present and its checksum is right (only then are its bits trusted).
    public private(set) var batmapValid: Bool = false

    var batRaw: [UInt8] = []
    var batmapMap: [UInt8] = []
    var bitmapCache: [Int: [UInt8]] = [:]
    var dirtyBATSectors: Set<Int> = []
    var batmapDirty = false
    var footerDirty = false
    /// When set, BAT, batmap and footer writes wait for `commit()` (bulk operations).
    public var deferMetadata = false
    /// Byte offset where the next block's bitmap may start.
    public private(set) var endOfData: UInt64 = 0
    /// Byte offset where metadata (headers, BAT, batmap, locators) ends.
    public private(set) var endOfMetadata: UInt64 = 0

    let repairing: Bool
    /// Whether the BAT was loaded (metadata-only opens skip it and cannot read or write data).
    public let batLoaded: Bool

    /// Opens the image in `store`, validating footer, header, BAT and batmap; `loadBAT: false`
    /// reads only footer and header (for walking chains quickly).
    /// `repairing` opens read-write even with an invalid batmap and prefers the backup footer
    /// when `preferBackupFooter` is set (what `vhd repair -b` needs).
    public init(store: any BlockStore, path: String, writable: Bool, allowDisabled: Bool = false,
                loadBAT: Bool = true, repairing: Bool = false, preferBackupFooter: Bool = false) throws {
        self.batLoaded = loadBAT || writable
        self.repairing = repairing
        self.store = store
        self.path = path
        self.writable = writable
        let size = store.size
        guard size >= 512 else { throw VHDError.invalidFooter(path: path, reason: "file of \(size) bytes is too small") }
        if preferBackupFooter, case let .success(f) = Footer.decode(try store.read(count: 512, at: 0)), f.diskType != .fixed {
            (footer, footerSource) = (f, .backup)
        } else {
            (footer, footerSource) = try Self.readFooter(store: store, path: path)
        }
        if footer.disabled && !allowDisabled {
            throw VHDError.unsupported(path: path, reason: "image disabled by an unfinished journaled resize (v_poison)")
        }
        guard footer.currentSize <= Footer.maxReadableSize else {
            throw VHDError.invalidFooter(path: path, reason: "virtual size \(footer.currentSize) is absurd")
        }
        if footer.diskType == .fixed {
            guard footer.currentSize <= size - (footerSource == .short ? 511 : 512) else {
                throw VHDError.invalidFooter(path: path, reason: "fixed disk of \(footer.currentSize) bytes in a file of \(size)")
            }
            endOfData = footer.currentSize
            endOfMetadata = 0
            return
        }
        try loadDynamicMetadata(size: size)
    }

    /// Reads the primary footer, then the short footer, then the backup copy at 0.
    static func readFooter(store: any BlockStore, path: String) throws -> (Footer, FooterSource) {
        let size = store.size
        let primary = Footer.decode(try store.read(count: 512, at: size - 512))
        if case let .success(f) = primary { return (f, .primary) }
        if size % 512 == 511, case let .success(f) = Footer.decode(try store.read(count: 511, at: size - 511)) {
            return (f, .short)
        }
        if case let .success(f) = Footer.decode(try store.read(count: 512, at: 0)), f.diskType != .fixed {
            return (f, .backup)
        }
        if case let .failure(p) = primary { throw VHDError.invalidFooter(path: path, reason: p.description) }
        throw VHDError.invalidFooter(path: path, reason: "unreadable")
    }

    private func loadDynamicMetadata(size: UInt64) throws {
        guard footer.dataOffset % 512 == 0, footer.dataOffset <= size, size - footer.dataOffset >= 1024 else {
            throw VHDError.invalidHeader(path: path, reason: "header offset \(footer.dataOffset) outside the file")
        }
        let h: DynamicHeader
        switch DynamicHeader.decode(try store.read(count: 1024, at: footer.dataOffset)) {
        case let .success(v): h = v
        case let .failure(p): throw VHDError.invalidHeader(path: path, reason: p.description)
        }
        guard h.headerVersion == 0x0001_0000 else {
            throw VHDError.invalidHeader(path: path, reason: "version 0x\(String(h.headerVersion, radix: 16))")
        }
        guard h.blockSize >= 4096, h.blockSize <= 1 << 28, h.blockSize & (h.blockSize - 1) == 0 else {
            throw VHDError.invalidHeader(path: path, reason: "block size \(h.blockSize) is not a power of two in 4 KiB...256 MiB")
        }
        guard h.maxTableEntries <= Self.maxTableEntriesAccepted else {
            throw VHDError.invalidBAT(path: path, reason: "\(h.maxTableEntries) entries is absurd")
        }
        let needed = (footer.currentSize + UInt64(h.blockSize) - 1) / UInt64(h.blockSize)
        guard UInt64(h.maxTableEntries) >= needed else {
            throw VHDError.invalidBAT(path: path, reason: "\(h.maxTableEntries) entries for a disk of \(needed) blocks")
        }
        guard h.tableOffset % 512 == 0, h.tableOffset >= footer.dataOffset + 1024 || h.tableOffset + h.batBytes <= footer.dataOffset,
              h.tableOffset <= size, h.batBytes <= size - h.tableOffset else {
            throw VHDError.invalidBAT(path: path, reason: "table at \(h.tableOffset) of \(h.batBytes) bytes outside the file or over the header")
        }
        header = h
        var metaEnd = max(footer.dataOffset + 1024, h.tableOffset + h.batBytes)
        for (slot, l) in h.locators.enumerated() where l.rawCode != 0 {
            guard let space = l.spaceInBytes, l.dataOffset % 512 == 0, l.dataOffset <= size,
                  space <= size - l.dataOffset, UInt64(l.dataLength) <= space else {
                throw VHDError.invalidLocator(path: path, reason: "slot \(slot) points outside the file or has a bad size")
            }
            metaEnd = max(metaEnd, l.dataOffset + space)
        }
        guard batLoaded else { return }
        batRaw = try store.read(count: Int(h.batBytes), at: h.tableOffset)
        try loadBatmap(size: size, metaEnd: &metaEnd)
        endOfMetadata = metaEnd
        try validateBAT(size: size)
    }

    private func loadBatmap(size: UInt64, metaEnd: inout UInt64) throws {
        guard let h = header, footer.isTap, footer.creatorVersion >= 0x0001_0001 else { return }
        let at = h.tableOffset + h.batBytes
        guard at + 512 <= size, let bh = BatmapHeader.decode(try store.read(count: 512, at: at)) else {
            if footer.creatorVersion >= 0x0001_0002 && writable && !repairing {
                throw VHDError.invalidBatmap(path: path, reason: "header missing after the BAT")
            }
            return
        }
        batmapHeader = bh
        metaEnd = max(metaEnd, at + 512)
        let mapSize = BatmapHeader.mapSize(currentSize: footer.currentSize)
        let bytes = UInt64(bh.mapSectors) * 512
        guard bh.version == 0x0001_0002 || bh.version == 0x0001_0001, bh.mapOffset % 512 == 0,
              bh.mapOffset <= size, bytes <= size - bh.mapOffset, bytes >= UInt64(mapSize),
              bh.mapSectors <= 2 * BatmapHeader.sectors(forEntries: h.maxTableEntries) + 8,
              bytes * 8 >= UInt64(h.maxTableEntries) || bytes >= 512 * UInt64(BatmapHeader.sectors(forEntries: h.maxTableEntries)) else {
            if writable && !repairing { throw VHDError.invalidBatmap(path: path, reason: "map outside the file or too small") }
            return
        }
        metaEnd = max(metaEnd, bh.mapOffset + bytes)
        batmapMap = try store.read(count: Int(bytes), at: bh.mapOffset)
        batmapValid = BatmapHeader.checksum(batmapMap, count: mapSize) == bh.checksum
        if !batmapValid && writable && !repairing {
            throw VHDError.invalidBatmap(path: path, reason: "invalid checksum (repair rebuilds it)")
        }
    }

    private func validateBAT(size: UInt64) throws {
        let span = UInt64(bitmapBytes + blockSize)
        let footerAt: UInt64 = footerSource == .primary ? size - 512 : size
        var end = endOfMetadata
        var starts: [UInt32] = []
        for b in allocatedEntries(upTo: Int(header!.maxTableEntries)) {
            let e = entry(b)
            let start = UInt64(e) * 512
            guard start >= endOfMetadata else {
                throw VHDError.invalidBAT(path: path, reason: "block \(b) at sector \(e) overlaps metadata")
            }
            guard start + span <= footerAt else {
                throw VHDError.invalidBAT(path: path, reason: "block \(b) at sector \(e) extends past the end of the file (clobbers footer)")
            }
            end = max(end, start + span)
            if writable { starts.append(e) }
        }
        if writable && starts.count > 1 {
            starts.sort()
            for i in 1..<starts.count where UInt64(starts[i] - starts[i - 1]) * 512 < span {
                throw VHDError.invalidBAT(path: path, reason: "blocks at sectors \(starts[i - 1]) and \(starts[i]) overlap")
            }
        }
        endOfData = end
    }

    // MARK: - Geometry of the image

    /// Virtual size in bytes.
    public var virtualSize: UInt64 { footer.currentSize }
    /// Disk type.
    public var diskType: DiskType { footer.diskType }
    /// Block size in bytes (2 MiB for fixed disks, for uniform iteration).
    public var blockSize: Int { Int(header?.blockSize ?? DynamicHeader.defaultBlockSize) }
    /// Sectors per block.
    public var sectorsPerBlock: Int { blockSize / 512 }
    /// Bytes of sector bitmap in front of each block.
    public var bitmapBytes: Int { (header?.bitmapSectors ?? 1) * 512 }
    /// Blocks covering the virtual size.
    public var blockCount: Int { Int((virtualSize + UInt64(blockSize) - 1) / UInt64(blockSize)) }
    /// BAT capacity.
    public var maxTableEntries: Int { Int(header?.maxTableEntries ?? 0) }
    /// The parent uuid (null for dynamic and fixed disks and raw parents).
    public var parentUUID: VHDUUID { header?.parentUUID ?? .null }
    /// Whether the footer's hidden flag is set.
    public var hidden: Bool { footer.hidden != 0 }
    /// The batmap's marker byte (0 without a batmap).
    public var marker: UInt8 { batmapHeader?.marker ?? 0 }

    /// BAT entry of block `b`: sector of its bitmap, or `unused`.
    public func entry(_ b: Int) -> UInt32 {
        precondition(batLoaded, "metadata-only image: the BAT was not loaded")
        return batRaw.be32(b * 4)
    }

    /// Whether block `b` has storage in this image.
    public func isAllocated(_ b: Int) -> Bool { diskType == .fixed || entry(b) != Self.unused }

    /// Number of blocks with storage.
    public var allocatedBlockCount: Int {
        guard diskType != .fixed else { return blockCount }
        return allocatedEntries(upTo: blockCount).count
    }

    /// Indices below `limit` whose BAT entry is used, found eight bytes at a time (a 2 TiB BAT
    /// has a million entries, mostly unused, and every open walks it).
    func allocatedEntries(upTo limit: Int) -> [Int] {
        precondition(batLoaded, "metadata-only image: the BAT was not loaded")
        var out: [Int] = []
        batRaw.withUnsafeBytes { raw in
            let n = min(limit, raw.count / 4)
            var b = 0
            while b + 2 <= n {
                if raw.loadUnaligned(fromByteOffset: b * 4, as: UInt64.self) != UInt64.max {
                    if raw.loadUnaligned(fromByteOffset: b * 4, as: UInt32.self) != Self.unused { out.append(b) }
                    if raw.loadUnaligned(fromByteOffset: b * 4 + 4, as: UInt32.self) != Self.unused { out.append(b + 1) }
                }
                b += 2
            }
            if b < n && raw.loadUnaligned(fromByteOffset: b * 4, as: UInt32.self) != Self.unused { out.append(b) }
        }
        return out
    }

    /// Whether the batmap marks block `b` full (only a valid batmap counts).
    public func batmapSaysFull(_ b: Int) -> Bool {
        guard batmapValid, b < BatmapHeader.mapSize(currentSize: virtualSize) * 8, b >> 3 < batmapMap.count else { return false }
        return batmapMap[b >> 3] & (0x80 >> UInt8(b & 7)) != 0
    }

    /// The sector bitmap of allocated block `b` (all ones for fixed disks).
    public func bitmap(_ b: Int) throws -> [UInt8] {
        if diskType == .fixed { return [UInt8](repeating: 0xff, count: bitmapBytes) }
        if let m = bitmapCache[b] { return m }
        let m = try store.read(count: bitmapBytes, at: UInt64(entry(b)) * 512)
        if bitmapCache.count >= 4096 { bitmapCache.removeAll(keepingCapacity: true) }
        bitmapCache[b] = m
        return m
    }

    /// Byte offset in the store of sector `s` of allocated block `b`.
    public func dataOffset(block b: Int, sector s: Int) -> UInt64 {
        if diskType == .fixed { return UInt64(b) * UInt64(blockSize) + UInt64(s) * 512 }
        return UInt64(entry(b)) * 512 + UInt64(bitmapBytes) + UInt64(s) * 512
    }

    /// Calls `body(firstSector, count, present)` for the maximal runs of sectors
    /// `first..<first+count` of block `b` that this image holds or does not hold.
    public func forEachRun(block b: Int, from first: Int, count: Int,
                           _ body: (Int, Int, Bool) throws -> Void) throws {
        if diskType == .fixed { return try body(first, count, true) }
        guard entry(b) != Self.unused else { return try body(first, count, false) }
        if batmapSaysFull(b) { return try body(first, count, true) }
        try SectorBitmap.forEachRun(try bitmap(b), in: first..<first + count, body)
    }

    // MARK: - Writing

    /// Writes whole sectors at `sector` into this image (sector-granular copy-on-write: only
    /// the written sectors become present).
    public func write(_ data: UnsafeRawBufferPointer, atSector sector: UInt64) throws {
        guard writable else { throw VHDError.readOnly(path: path) }
        precondition(data.count % 512 == 0)
        let bytes = UInt64(data.count)
        guard sector * 512 <= virtualSize, bytes <= virtualSize - sector * 512 else {
            throw VHDError.outOfRange(offset: sector * 512, length: bytes, size: virtualSize)
        }
        if diskType == .fixed { return try store.write(data, at: sector * 512) }
        let spb = UInt64(sectorsPerBlock)
        var done = 0
        var s = sector
        while done < data.count {
            let b = Int(s / spb)
            let first = Int(s % spb)
            let n = min(sectorsPerBlock - first, (data.count - done) / 512)
            try writeInBlock(b, first: first, data: UnsafeRawBufferPointer(rebasing: data[done..<done + n * 512]))
            done += n * 512
            s += UInt64(n)
        }
        if !deferMetadata { try commit() }
    }

    /// Writes sectors `first..<first+n` of block `b`, allocating it if needed.
    func writeInBlock(_ b: Int, first: Int, data: UnsafeRawBufferPointer) throws {
        let n = data.count / 512
        if entry(b) == Self.unused { try allocate(b) }
        try store.write(data, at: dataOffset(block: b, sector: first))
        try markPresent(b, first..<first + n)
    }

    /// Sets bitmap bits for `range` of allocated block `b` (after its data is written).
    public func markPresent(_ b: Int, _ range: Range<Int>) throws { try markPresent(b, [range]) }

    /// Sets bitmap bits for every range of `ranges` of allocated block `b` (after their data is
    /// written), writing the bitmap once.
    func markPresent(_ b: Int, _ ranges: [Range<Int>]) throws {
        guard let map = try setCachedBits(b, ranges) else { return }
        try store.write(map, at: UInt64(entry(b)) * 512)
        if batmapHeader != nil, SectorBitmap.isFull(map, count: sectorsPerBlock) { setBatmapBit(b) }
    }

    /// Sets the bits of `ranges` in the cached bitmap of allocated block `b`: the new bitmap, or
    /// nil when nothing changed (or the batmap marks the block full).
    func setCachedBits(_ b: Int, _ ranges: [Range<Int>]) throws -> [UInt8]? {
        if batmapSaysFull(b) { return nil }
        var map = try bitmap(b)
        var changed = false
        for range in ranges where SectorBitmap.set(&map, range) { changed = true }
        guard changed else { return nil }
        bitmapCache[b] = map
        return map
    }

    /// Replaces the whole bitmap of allocated block `b` (bulk operations).
    func storeBitmap(_ b: Int, _ map: [UInt8]) throws {
        bitmapCache[b] = map
        try store.write(map, at: UInt64(entry(b)) * 512)
        if batmapHeader != nil, SectorBitmap.isFull(map, count: sectorsPerBlock) { setBatmapBit(b) }
    }

    func setBatmapBit(_ b: Int) {
        guard batmapValid, b >> 3 < batmapMap.count, b < BatmapHeader.mapSize(currentSize: virtualSize) * 8 else { return }
        batmapMap[b >> 3] |= 0x80 >> UInt8(b & 7)
        batmapDirty = true
    }

    /// Appends block `b` at the end of data with its data 4 KiB-aligned; writes the gap and a
    /// zeroed bitmap, then the BAT entry (unless metadata is deferred).
    public func allocate(_ b: Int) throws {
        guard writable else { throw VHDError.readOnly(path: path) }
        guard b < maxTableEntries else { throw VHDError.outOfRange(offset: UInt64(b) * UInt64(blockSize), length: 0, size: virtualSize) }
        let (e, headBytes, newEnd) = try nextBlockPosition()
        // The footer past the block first: the head overwrites the old one at the end of data.
        let footerWasDue = footerDirty || footerSource != .primary
        let covered = try coverBlock(endingAt: newEnd)
        try store.write([UInt8](repeating: 0, count: headBytes), at: endOfData)
        publish(b, entry: e, newEnd: newEnd, bitmap: [UInt8](repeating: 0, count: bitmapBytes))
        // The footer the cover wrote is the one the commit would write at the new end of data.
        if covered && !footerWasDue { footerDirty = false }
        if !deferMetadata { try writeDirtyBATSectors() }
    }

    /// Where the next block goes: its BAT entry (data 4 KiB-aligned), the bytes of gap plus
    /// bitmap from the end of data, and the new end of data.
    func nextBlockPosition() throws -> (entry: UInt32, headBytes: Int, newEnd: UInt64) {
        let start = endOfData / 512
        let bmSecs = UInt64(bitmapBytes / 512)
        let gap = (8 - (start + bmSecs) % 8) % 8
        let e = start + gap
        let newEnd = (e + bmSecs) * 512 + UInt64(blockSize)
        guard e < UInt64(UInt32.max) else {
            throw VHDError.noSpace(path: path, needed: newEnd, available: UInt64(UInt32.max) * 512)
        }
        if store.isBlockDevice && newEnd + 512 > store.size {
            throw VHDError.noSpace(path: path, needed: newEnd + 512, available: store.size)
        }
        return (UInt32(e), Int((gap + bmSecs) * 512), newEnd)
    }

    /// Makes the file reach past a new block before anything points at it: a footer right after
    /// it (as libvhd keeps one), so a crash never leaves a BAT entry beyond the end of the file.
    /// Called before the block's first write, which overwrites the footer at the end of data:
    /// the file's last sector is a valid footer at every point.
    /// Returns whether it wrote the footer (the file now ends right after it).
    @discardableResult
    func coverBlock(endingAt newEnd: UInt64) throws -> Bool {
        guard !store.isBlockDevice && store.size < newEnd + 512 else { return false }
        try store.write(footer.encoded(), at: newEnd)
        return store.size == newEnd + 512
    }

    /// Records block `b` at `entry` in the in-memory BAT (written with the next commit).
    func publish(_ b: Int, entry e: UInt32, newEnd: UInt64, bitmap: [UInt8]) {
        batRaw.setBE32(e, at: b * 4)
        bitmapCache[b] = bitmap
        endOfData = newEnd
        dirtyBATSectors.insert(b * 4 / 512)
        footerDirty = true
    }

    /// Writes pending BAT sectors and the footer, leaving a changed batmap for `commit`.
    func commitAllocation() throws {
        guard writable else { return }
        try writeDirtyBATSectors()
        if footerDirty || footerSource != .primary { try writeFooters(backup: footerSource == .backup) }
    }

    /// Writes pending BAT sectors, batmap and the footer at the end of data.
    public func commit() throws {
        guard writable else { return }
        try writeDirtyBATSectors()
        if batmapDirty, var bh = batmapHeader {
            bh.checksum = BatmapHeader.checksum(batmapMap, count: BatmapHeader.mapSize(currentSize: virtualSize))
            try store.write(batmapMap, at: bh.mapOffset)
            try store.write(bh.encoded(), at: header!.tableOffset + header!.batBytes)
            batmapHeader = bh
            batmapDirty = false
        }
        if footerDirty || footerSource != .primary { try writeFooters(backup: footerSource == .backup) }
    }

    /// Writes the footer at the end (file: end of data, truncating; device: its last sector)
    /// and, for dynamic disks, optionally the copy at 0.
    func writeFooters(backup: Bool) throws {
        let bytes = footer.encoded()
        if diskType != .fixed && backup { try store.write(bytes, at: 0) }
        if store.isBlockDevice {
            try store.write(bytes, at: store.size - 512)
        } else {
            try store.write(bytes, at: endOfData)
            if store.size != endOfData + 512 { try store.resize(to: endOfData + 512) }
        }
        footerSource = .primary
        footerDirty = false
    }

    /// Replaces the footer (hidden flag, size, uuid) and rewrites both copies.
    public func updateFooter(_ change: (inout Footer) -> Void) throws {
        guard writable else { throw VHDError.readOnly(path: path) }
        change(&footer)
        try writeDirtyBATSectors()
        try writeFooters(backup: true)
    }

    /// Replaces the dynamic header (parent fields, locators) and rewrites it.
    public func updateHeader(_ change: (inout DynamicHeader) -> Void) throws {
        guard writable, var h = header else { throw VHDError.readOnly(path: path) }
        change(&h)
        try store.write(h.encoded(), at: footer.dataOffset)
        header = h
    }

    /// Sets the batmap marker byte.
    public func setMarker(_ value: UInt8) throws {
        guard writable else { throw VHDError.readOnly(path: path) }
        guard var bh = batmapHeader, let h = header else {
            throw VHDError.unsupported(path: path, reason: "no batmap to hold a marker")
        }
        bh.marker = value
        try store.write(bh.encoded(), at: h.tableOffset + h.batBytes)
        batmapHeader = bh
    }

    /// Forgets cached bitmaps (after another writer changed the file).
    public func dropCaches() { bitmapCache.removeAll() }

    /// The raw batmap bytes (for check and repair).
    public var batmapBytes: [UInt8] { batmapMap }

    /// The raw BAT region (for check, relink and resize).
    public var batBytes: [UInt8] { batRaw }

    /// Recomputes the batmap from the sector bitmaps and writes it with a fresh checksum
    /// (repair); returns the number of bits that changed.
    @discardableResult
    public func rebuildBatmap() throws -> Int {
        guard writable, var bh = batmapHeader, let h = header else { return 0 }
        let mapSize = BatmapHeader.mapSize(currentSize: virtualSize)
        var map = [UInt8](repeating: 0, count: max(Int(bh.mapSectors) * 512, mapSize))
        for b in 0..<min(blockCount, mapSize * 8) where entry(b) != Self.unused {
            if SectorBitmap.isFull(try bitmap(b), count: sectorsPerBlock) { map[b >> 3] |= 0x80 >> UInt8(b & 7) }
        }
        let changed = zip(map, batmapMap).reduce(0) { $0 + ($1.0 ^ $1.1).nonzeroBitCount } + (batmapValid ? 0 : 1)
        bh.checksum = BatmapHeader.checksum(map, count: mapSize)
        batmapMap = map
        try store.write(map, at: bh.mapOffset)
        try store.write(bh.encoded(), at: h.tableOffset + h.batBytes)
        batmapHeader = bh
        batmapValid = true
        return changed
    }

    /// Reloads every piece of metadata from the store.
    public func reload() throws -> VHDImage {
        try VHDImage(store: store, path: path, writable: writable)
    }
}

extension VHDImage {
    /// Copies block `b` (bitmap and data, given in `bytes`) to a new place at the end of data and
    /// points the BAT at it; the old copy stays until something overwrites it.
    func relocate(_ b: Int, from bytes: UnsafeRawBufferPointer) throws {
        batRaw.setBE32(Self.unused, at: b * 4)
        let saved = deferMetadata
        deferMetadata = true
        defer { deferMetadata = saved }
        try allocate(b)
        try store.write(bytes, at: UInt64(entry(b)) * 512)
        bitmapCache.removeValue(forKey: b)
        try writeDirtyBATSectors()
    }

    /// Makes the next block go at or after `offset` (room for metadata that is about to grow).
    func reserve(upTo offset: UInt64) {
        if offset > endOfData { endOfData = roundUp(offset, to: 512); footerDirty = true }
    }

    /// Writes the BAT sectors changed since the last write.
    func writeDirtyBATSectors() throws {
        guard let h = header else { return }
        for s in dirtyBATSectors.sorted() {
            try store.write(Array(batRaw[s * 512..<(s + 1) * 512]), at: h.tableOffset + UInt64(s) * 512)
        }
        dirtyBATSectors.removeAll()
    }
}

extension VHDImage {
    /// Appends unallocated block `b` holding `data` (a whole block): gap and all-ones bitmap,
    /// then the data, then the BAT entry (deferred with `deferMetadata`) and batmap bit.
    public func appendFullBlock(_ b: Int, data: UnsafeRawBufferPointer) throws {
        guard data.count == blockSize else { throw VHDError.invalidArgument("data is not one block") }
        try appendBlock(b, bitmap: [UInt8](repeating: 0xff, count: bitmapBytes), data: data, firstSector: 0)
    }

    /// Appends unallocated block `b` in two writes: gap and final `bitmap`, then `data` at
    /// sector `firstSector` of the block. Safe in this order because nothing points at the
    /// block until its BAT entry is written (after, or at `commit()` with `deferMetadata`).
    public func appendBlock(_ b: Int, bitmap: [UInt8], data: UnsafeRawBufferPointer, firstSector: Int) throws {
        guard writable else { throw VHDError.readOnly(path: path) }
        guard b < maxTableEntries, entry(b) == Self.unused, diskType != .fixed, bitmap.count == bitmapBytes,
              data.count % 512 == 0, firstSector * 512 + data.count <= blockSize else {
            throw VHDError.invalidArgument("block \(b) is allocated or the data does not fit it")
        }
        let (e, headBytes, newEnd) = try nextBlockPosition()
        var head = [UInt8](repeating: 0, count: headBytes)
        head.replaceSubrange(headBytes - bitmapBytes..<headBytes, with: bitmap)
        try coverBlock(endingAt: newEnd)
        try store.write(head, at: endOfData)
        try store.write(data, at: UInt64(e) * 512 + UInt64(bitmapBytes) + UInt64(firstSector) * 512)
        publish(b, entry: e, newEnd: newEnd, bitmap: bitmap)
        if SectorBitmap.isFull(bitmap, count: sectorsPerBlock) { setBatmapBit(b) }
        if !deferMetadata { try commit() }
    }
}
