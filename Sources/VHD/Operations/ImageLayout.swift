/// The metadata region of a new dynamic or differencing image, laid out as blktap lays it:
/// footer copy, header at 512, BAT at 1536 padded with zeros, batmap header and map, then one
/// locator area per parent locator.
struct ImageLayout {
    /// The footer.
    var footer: Footer
    /// The header.
    var header: DynamicHeader
    /// Locator payloads, in slot order (differencing disks only).
    var locatorPayloads: [[UInt8]] = []
    /// The batmap header.
    var batmap: BatmapHeader

    /// A layout for a disk of `size` bytes whose BAT can address `capacity` bytes.
    init(type: DiskType, size: UInt64, capacity: UInt64, uuid: VHDUUID = .random()) {
        footer = Footer(type: type, size: size, uuid: uuid)
        let bs = UInt64(DynamicHeader.defaultBlockSize)
        let entries = UInt32((max(size, capacity) + bs - 1) / bs)
        header = DynamicHeader(maxTableEntries: entries)
        let batmapAt = header.tableOffset + header.batBytes
        batmap = BatmapHeader(mapOffset: batmapAt + 512, mapSectors: BatmapHeader.sectors(forEntries: entries))
    }

    /// Where the metadata ends (the first block goes here, aligned).
    var metadataEnd: UInt64 {
        var end = batmap.mapOffset + UInt64(batmap.mapSectors) * 512
        for p in locatorPayloads { end += roundUp(UInt64(max(p.count, 1)), to: 512) }
        return end
    }

    /// Sets parent uuid, timestamp, name and the MacX/W2ku/W2ru locators for `relativePath`.
    mutating func link(parentUUID: VHDUUID, parentTimestamp: UInt32, relativePath: String) {
        header.parentUUID = parentUUID
        header.parentTimestamp = parentTimestamp
        header.parentName = StorePath.basename(relativePath)
        let codes: [ParentLocator.Code] = [.macx, .w2ku, .w2ru]
        locatorPayloads = codes.map { ParentLocator.payload(code: $0, relativePath: relativePath) }
        var at = batmap.mapOffset + UInt64(batmap.mapSectors) * 512
        header.locators = Array(repeating: .empty, count: 8)
        for (i, code) in codes.enumerated() {
            let space = roundUp(UInt64(max(locatorPayloads[i].count, 1)), to: 512)
            header.locators[i] = ParentLocator(rawCode: code.rawValue, dataSpace: UInt32(space),
                                               dataLength: UInt32(locatorPayloads[i].count), reserved: 0, dataOffset: at)
            at += space
        }
    }

    /// The whole file: metadata, then the footer at the end of metadata.
    func encoded() -> [UInt8] {
        let end = Int(metadataEnd)
        var b = [UInt8](repeating: 0, count: end + 512)
        let f = footer.encoded()
        b.put(f, at: 0)
        b.put(header.encoded(), at: 512)
        let t = Int(header.tableOffset)
        let n = Int(header.maxTableEntries) * 4
        b.replaceSubrange(t..<t + n, with: repeatElement(0xff, count: n))
        var bm = batmap
        bm.checksum = BatmapHeader.checksum([], count: 0) // sum of zeros: all ones
        b.put(bm.encoded(), at: t + Int(header.batBytes))
        for (i, p) in locatorPayloads.enumerated() { b.put(p, at: Int(header.locators[i].dataOffset)) }
        b.put(f, at: end)
        return b
    }

    /// On a fixed-size volume (an LV) larger than the image's metadata, the primary footer
    /// belongs in its last sector, where readers of block devices look: copied there from the
    /// end of `encoded` bytes.
    static func placeEndFooter(_ encoded: [UInt8], in store: any BlockStore) throws {
        guard store.isBlockDevice, store.size >= 512, store.size - 512 > UInt64(encoded.count - 512) else { return }
        try store.write(Array(encoded.suffix(512)), at: store.size - 512)
    }
}
