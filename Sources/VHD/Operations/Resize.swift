/// Changing a disk's virtual size (`vhd-util resize`).
///
/// Fixed disks grow or shrink by moving the footer. Dynamic and differencing disks only grow:
/// within the BAT's capacity that is a footer rewrite (fast, safe online); beyond it the BAT,
/// batmap and locators need more room, so the first blocks are copied to the end of the file
/// (old layout still valid), then the new metadata is written to a journal, the image marked
/// disabled, the metadata written in place, and the image enabled again. `recover` replays
/// the journal after a crash.
public enum Resize {
    /// Journal magic.
    static let journalMagic: [UInt8] = Array("swsmrsz1".utf8)

    /// The largest size `image` can reach without moving metadata.
    public static func fastLimit(_ image: VHDImage) -> UInt64 {
        guard image.diskType != .fixed else { return image.virtualSize }
        // In blocks first: a damaged batmap size must not overflow the product.
        var blocks = UInt64(image.maxTableEntries)
        if let bh = image.batmapHeader { blocks = min(blocks, UInt64(bh.mapSectors) * 512 * 8) }
        return blocks * UInt64(image.blockSize)
    }

    /// Resizes the image at `path` to `size` bytes (rounded up to 2 MiB). `fastOnly` refuses
    /// anything but a footer rewrite; `journal` is where the metadata journal goes (by default a
    /// file beside the image).
    public static func run(path: String, size: UInt64, provider: any StoreProvider, fastOnly: Bool = false,
                           journal: (any MetadataJournal)? = nil) throws {
        let image = try VHDImage(store: try provider.open(path, writable: true), path: path, writable: true)
        guard image.footer.isTap || image.diskType == .fixed else {
            throw VHDError.unsupported(path: path, reason: "not created by tap; resize not supported")
        }
        let target = try Create.validatedSize(size)
        if image.diskType == .fixed { return try resizeFixed(image, to: target) }
        guard target >= image.virtualSize else {
            throw VHDError.unsupported(path: path, reason: "dynamic disks cannot shrink")
        }
        if target <= fastLimit(image) { return try setSize(image, target) }
        guard !fastOnly else {
            throw VHDError.unsupported(path: path, reason: "fast resize limited to \(fastLimit(image) >> 20) MiB")
        }
        try growMetadata(image, to: target, journal: journal ?? defaultJournal(path, provider))
    }

    static func setSize(_ image: VHDImage, _ size: UInt64) throws {
        try image.updateFooter {
            $0.currentSize = size
            $0.geometry = Geometry.forSize(size)
        }
        try image.store.sync()
    }

    static func resizeFixed(_ image: VHDImage, to size: UInt64) throws {
        let old = image.virtualSize
        var footer = image.footer
        footer.currentSize = size
        footer.geometry = Geometry.forSize(size)
        // New footer first past the data, then the old footer's sector zeroed (it is now disk data).
        try image.store.resize(to: size + 512)
        try image.store.write(footer.encoded(), at: size)
        if size > old { try image.store.write([UInt8](repeating: 0, count: 512), at: old) }
        try image.store.sync()
    }

    /// The new metadata of a grown image, as written to the journal and then in place.
    struct Plan {
        var footer: Footer
        var header: DynamicHeader
        /// (offset, bytes) pieces, all inside the metadata area.
        var pieces: [(UInt64, [UInt8])]
        var endOfData: UInt64

        func encoded() -> [UInt8] {
            var b = Resize.journalMagic
            func u64(_ v: UInt64) { var x = [UInt8](repeating: 0, count: 8); x.setBE64(v, at: 0); b += x }
            u64(endOfData)
            b += footer.encoded()
            b += header.encoded()
            u64(UInt64(pieces.count))
            for (at, bytes) in pieces { u64(at); u64(UInt64(bytes.count)); b += bytes }
            var sum = [UInt8](repeating: 0, count: 4)
            sum.setBE32(vhdChecksum(b, skipping: 0..<0), at: 0)
            return b + sum
        }

        static func decode(_ b: [UInt8]) -> Plan? {
            guard b.count >= 8 + 8 + 512 + 1024 + 8 + 4, Array(b[0..<8]) == Resize.journalMagic else { return nil }
            guard vhdChecksum(Array(b[0..<b.count - 4]), skipping: 0..<0) == b.be32(b.count - 4) else { return nil }
            guard case let .success(f) = Footer.decode(b.bytes(16, 512)),
                  case let .success(h) = DynamicHeader.decode(b.bytes(528, 1024)) else { return nil }
            var o = 1552
            let n = b.be64(o); o += 8
            var pieces: [(UInt64, [UInt8])] = []
            for _ in 0..<n {
                guard o + 16 <= b.count - 4 else { return nil }
                let at = b.be64(o), len = Int(b.be64(o + 8)); o += 16
                guard len <= b.count - 4 - o else { return nil }
                pieces.append((at, b.bytes(o, len))); o += len
            }
            return Plan(footer: f, header: h, pieces: pieces, endOfData: b.be64(8))
        }
    }

    /// The journal beside an image: `<path>.resize-journal`.
    static func defaultJournal(_ path: String, _ provider: any StoreProvider) -> any MetadataJournal {
        StoreJournal(path: path + ".resize-journal", provider: provider)
    }

    static func growMetadata(_ image: VHDImage, to size: UInt64, journal: any MetadataJournal) throws {
        guard var header = image.header else { return }
        let bs = UInt64(image.blockSize)
        let entries = UInt32((size + bs - 1) / bs)
        var newHeader = header
        newHeader.maxTableEntries = entries
        let batBytes = newHeader.batBytes
        var cursor = header.tableOffset + batBytes
        var pieces: [(UInt64, [UInt8])] = []
        // BAT: old entries, new ones unused, padding zero.
        var bat = [UInt8](repeating: 0, count: Int(batBytes))
        let oldEntries = image.maxTableEntries
        for i in 0..<Int(entries) { bat.setBE32(i < oldEntries ? image.entry(i) : VHDImage.unused, at: i * 4) }
        pieces.append((header.tableOffset, bat))
        if var bh = image.batmapHeader {
            let sectors = BatmapHeader.sectors(forEntries: entries)
            var map = [UInt8](repeating: 0, count: Int(sectors) * 512)
            let old = image.batmapBytes
            for i in 0..<min(old.count, BatmapHeader.mapSize(currentSize: image.virtualSize)) { map[i] = old[i] }
            bh.mapOffset = cursor + 512
            bh.mapSectors = sectors
            bh.checksum = BatmapHeader.checksum(map, count: BatmapHeader.mapSize(currentSize: size))
            pieces.append((cursor, bh.encoded()))
            pieces.append((bh.mapOffset, map))
            cursor = bh.mapOffset + UInt64(sectors) * 512
        }
        for (i, l) in header.locators.enumerated() where l.rawCode != 0 {
            let space = l.spaceInBytes ?? 512
            let data = try image.store.read(count: Int(space), at: l.dataOffset)
            newHeader.locators[i].dataOffset = cursor
            pieces.append((cursor, data))
            cursor += space
        }
        let newMetaEnd = cursor
        // Move every block that starts inside the new metadata area to the end of the file.
        var moving: [(Int, UInt32)] = []
        for b in 0..<oldEntries where image.entry(b) != VHDImage.unused && UInt64(image.entry(b)) * 512 < newMetaEnd {
            moving.append((b, image.entry(b)))
        }
        moving.sort { $0.1 < $1.1 }
        image.reserve(upTo: newMetaEnd)
        let span = image.bitmapBytes + image.blockSize
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: span, alignment: 4096)
        defer { buffer.deallocate() }
        for (b, e) in moving {
            try image.store.read(into: buffer, at: UInt64(e) * 512)
            try image.relocate(b, from: UnsafeRawBufferPointer(buffer))
            let newEntry = image.entry(b)
            var bat2 = pieces[0].1
            bat2.setBE32(newEntry, at: b * 4)
            pieces[0].1 = bat2
        }
        try image.commit()
        try image.store.sync()
        header = newHeader
        var footer = image.footer
        footer.currentSize = size
        footer.geometry = Geometry.forSize(size)
        let plan = Plan(footer: footer, header: header, pieces: pieces, endOfData: max(image.endOfData, newMetaEnd))
        try journal.write(plan.encoded())
        try apply(plan, to: image.store)
        try journal.remove()
    }

    /// Writes a plan in place: image disabled, metadata, header, enabled footers.
    static func apply(_ plan: Plan, to store: any BlockStore) throws {
        // Both footer copies say "disabled" while the metadata is rewritten in place, so no
        // reader trusts a half-written layout; `recover` replays the journal.
        var poisoned = plan.footer
        poisoned.disabled = true
        try store.write(poisoned.encoded(), at: 0)
        if store.size >= 512, case .success = Footer.decode(try store.read(count: 512, at: store.size - 512)) {
            try store.write(poisoned.encoded(), at: store.size - 512)
        }
        try store.sync()
        for (at, bytes) in plan.pieces { try store.write(bytes, at: at) }
        try store.write(plan.header.encoded(), at: plan.footer.dataOffset)
        let f = plan.footer.encoded()
        if store.isBlockDevice {
            try store.write(f, at: store.size - 512)
        } else {
            try store.write(f, at: plan.endOfData)
            try store.resize(to: plan.endOfData + 512)
        }
        try store.sync()
        try store.write(f, at: 0)
        try store.sync()
    }

    /// Finishes a journaled resize interrupted by a crash; returns whether a journal was replayed.
    /// A journal that is incomplete (the crash came before it was written) is discarded: the
    /// image still has its old, valid layout.
    @discardableResult
    public static func recover(path: String, journal: (any MetadataJournal)? = nil, provider: any StoreProvider) throws -> Bool {
        let journal = journal ?? defaultJournal(path, provider)
        guard let bytes = try journal.read() else { return false }
        if let plan = Plan.decode(bytes) {
            try apply(plan, to: try provider.open(path, writable: true))
        }
        try journal.remove()
        return true
    }
}
