import VHD

/// One PV on a `BlockStore` (a LUN, a loop device's file): its label, its metadata areas, and the
/// VG they hold. Reads the newest valid copy; commits new versions with lvm2's two-phase protocol.
///
/// Writers must be serialised by the caller (one master host); readers on other hosts use
/// `hasChanged()` / `isStale(_:)` to learn that their cached VG is old.
public final class PVDevice {
    /// Where lvm2 puts the first metadata area (one page in).
    public static let defaultMetadataOffset: UInt64 = 4096
    /// lvm2's default metadata area size (so that the first extent starts at 1 MiB).
    public static let defaultMetadataSize: UInt64 = 1_044_480
    /// lvm2's default data alignment (`pe_start` multiple), bytes.
    public static let dataAlignment: UInt64 = 1 << 20
    /// vgcreate's default extent size: 4 MiB, in sectors.
    public static let defaultExtentSize: UInt64 = 8192

    /// The device.
    public let store: BlockStore
    /// The label and PV header as last read or written.
    public private(set) var label: Label
    /// Committed locations per metadata area when this device last read or wrote the VG.
    public private(set) var knownLocations: [RawLocation] = []

    /// Opens the PV on `store` (reads its label; metadata is read by `read()`).
    public init(store: BlockStore) throws {
        self.store = store
        label = try Label.find(in: store)
        guard !label.pvHeader.metadataAreas.isEmpty else { throw LVMError.noMetadata }
    }

    /// The metadata areas of this PV.
    public var metadataAreas: [MetadataArea] { label.pvHeader.metadataAreas.map(MetadataArea.init) }

    /// The PV's identifier.
    public var uuid: LVMUUID { label.pvHeader.uuid }

    /// Byte offset of the first extent (from the data area in the PV header; the VG's `pe_start` wins).
    public var dataOffset: UInt64 { label.pvHeader.dataAreas.first?.offset ?? PVDevice.dataAlignment }

    // MARK: Creating

    /// Does what `pvcreate` + `vgcreate` do on a blank store: one PV with one metadata area at 4 KiB,
    /// extents from `pe_start`, and a VG holding it, committed as seqno 1. Returns the open device.
    /// Refuses a store that already holds an LVM2 label unless `overwrite` (pvcreate's `-ff`).
    public static func create(on store: BlockStore, vgName: String, extentSize: UInt64 = defaultExtentSize,
                              overwrite: Bool = false,
                              metadataSize: UInt64 = defaultMetadataSize, pvUUID: LVMUUID = .random(),
                              vgUUID: LVMUUID = .random(), device: String = "unknown device",
                              description: String = "Created by SwiftSM (pvcreate + vgcreate)") throws -> (PVDevice, VolumeGroup) {
        try LVMName.checkVG(vgName)
        if !overwrite, (try? Label.find(in: store)) != nil {
            throw LVMError.invalidArgument("the device already holds an LVM2 label (a PV); pass overwrite to replace it")
        }
        guard extentSize >= 8, extentSize.nonzeroBitCount == 1, extentSize <= 1 << 25 else {
            throw LVMError.invalidArgument("extent size \(extentSize) sectors: a power of two from 4 KiB to 16 GiB")
        }
        guard metadataSize >= 64 << 10, metadataSize % 512 == 0, metadataSize <= 1 << 30 else {
            throw LVMError.invalidArgument("metadata area size \(metadataSize): a multiple of 512 from 64 KiB")
        }
        let deviceSize = store.size / 512 * 512
        let peStartBytes = (defaultMetadataOffset + metadataSize + dataAlignment - 1) / dataAlignment * dataAlignment
        guard deviceSize > peStartBytes, (deviceSize - peStartBytes) / 512 / extentSize >= 1 else {
            throw LVMError.invalidArgument("device of \(store.size) bytes holds no extent of \(extentSize * 512) bytes")
        }
        let peCount = (deviceSize - peStartBytes) / 512 / extentSize
        let mda = DiskArea(offset: defaultMetadataOffset, size: metadataSize)
        let header = PVHeader(uuid: pvUUID, deviceSize: deviceSize, dataAreas: [DiskArea(offset: peStartBytes, size: 0)],
                              metadataAreas: [mda], extensionFlags: PVHeader.usedFlag)
        let label = Label(sector: 1, pvHeader: header)
        // Wipe the label sectors, write an empty metadata area header, then the label: a crash
        // leaves no PV, or a PV without a VG.
        try store.write([UInt8](repeating: 0, count: Int(defaultMetadataOffset)), at: 0)
        try MetadataArea(area: mda).writeHeader(MDAHeader(start: mda.offset, areaSize: mda.size), to: store)
        try store.sync()
        try store.write(label.encode(), at: 0 + UInt64(Label.sectorSize) * label.sector)
        try store.sync()
        let pv = PhysicalVolume(key: "pv0", id: pvUUID, device: device, devSize: deviceSize / 512,
                                peStart: peStartBytes / 512, peCount: peCount)
        let vg = VolumeGroup(name: vgName, id: vgUUID, seqno: 0, extentSize: extentSize, physicalVolumes: [pv])
        let dev = try PVDevice(store: store)
        let committed = try dev.write(vg, expecting: 0, description: description)
        return (dev, committed)
    }

    // MARK: Reading

    /// One metadata area's committed copy, or why it is unusable.
    private func readArea(_ mda: MetadataArea) throws -> (MetadataText, RawLocation) {
        let header = try mda.readHeader(from: store)
        guard !header.committed.isEmpty else { throw LVMError.noMetadata }
        guard header.committed.flags & RawLocation.ignoredFlag == 0 else { throw LVMError.noMetadata }
        let text = try mda.readText(at: header.committed, header: header, from: store)
        return (try MetadataText.parse(text), header.committed)
    }

    /// Reads the VG: the copy with the highest seqno among this PV's valid metadata areas.
    /// Throws the first area's error when none is valid.
    public func read() throws -> VolumeGroup {
        try readText().vg
    }

    /// Reads the newest valid copy with its header fields (description, host, time).
    public func readText() throws -> MetadataText {
        var best: MetadataText?
        var firstError: (any Error)?
        var locations: [RawLocation] = []
        for mda in metadataAreas {
            do {
                let (text, loc) = try readArea(mda)
                locations.append(loc)
                if best == nil || text.vg.seqno > best!.vg.seqno { best = text }
            } catch {
                locations.append(.none)
                if firstError == nil { firstError = error }
            }
        }
        guard let best else { throw firstError ?? LVMError.noMetadata }
        guard let me = best.vg.physicalVolumes.first(where: { $0.id == uuid }) else {
            throw LVMError.invalidMetadata("VG \(best.vg.name) does not list this PV (\(uuid))")
        }
        guard (me.peStart + me.peCount * best.vg.extentSize) * 512 <= store.size else {
            throw LVMError.invalidMetadata("PV \(me.key): extents end at sector \(me.peStart + me.peCount * best.vg.extentSize), past the device (\(store.size / 512) sectors)")
        }
        knownLocations = locations
        return best
    }

    // MARK: Staleness

    /// The committed location of each metadata area now on disk (one sector read per area).
    public func committedLocations() throws -> [RawLocation] {
        try metadataAreas.map { try $0.readHeader(from: store).committed }
    }

    /// Whether another writer committed since this device last read or wrote the VG (compares the
    /// metadata area headers only: no text is read or parsed).
    public func hasChanged() throws -> Bool {
        try committedLocations() != knownLocations
    }

    /// The highest seqno on disk, read from the first lines of each committed copy (no full parse,
    /// no crc check: a hint; `read()` is the authority).
    public func peekSeqno() throws -> UInt64 {
        var best: UInt64 = 0
        for mda in metadataAreas {
            let header = try mda.readHeader(from: store)
            let loc = header.committed
            guard !loc.isEmpty else { continue }
            try MetadataArea.validate(loc, areaSize: header.areaSize, limit: header.maxTextSize)
            let n = Int(min(loc.size, 1024))
            var head = [UInt8](repeating: 0, count: n)
            let first = Int(min(UInt64(n), header.areaSize - loc.offset))
            try head.withUnsafeMutableBytes { b in
                try store.read(into: UnsafeMutableRawBufferPointer(rebasing: b[0..<first]), at: mda.area.offset + loc.offset)
                if first < n {
                    try store.read(into: UnsafeMutableRawBufferPointer(rebasing: b[first..<n]), at: mda.area.offset + UInt64(MDAHeader.size))
                }
            }
            let key = Array("\nseqno = ".utf8)
            guard let at = (0...(max(head.count - key.count, 0))).first(where: { head.count >= key.count && Array(head[$0..<$0 + key.count]) == key }) else {
                throw LVMError.invalidMetadataLocation("no seqno in the first 1 KiB of the copy")
            }
            var v: UInt64 = 0
            var i = at + key.count
            while i < head.count, head[i] >= 0x30, head[i] <= 0x39, v < UInt64.max / 100 { v = v * 10 + UInt64(head[i] - 0x30); i += 1 }
            best = max(best, v)
        }
        return best
    }

    /// Whether `vg` (as read earlier) is older than what is committed now.
    public func isStale(_ vg: VolumeGroup) throws -> Bool {
        try peekSeqno() != vg.seqno
    }

    // MARK: Committing

    /// Commits `vg` (changed from the version read with seqno `vg.seqno`) as seqno `vg.seqno + 1`
    /// to every metadata area of this PV; returns the committed VG. Refuses when the committed
    /// version on disk is no longer `vg.seqno` (another writer was first).
    @discardableResult
    public func commit(_ vg: VolumeGroup, description: String = "Write from SwiftSM") throws -> VolumeGroup {
        let onDisk = try read().seqno
        guard onDisk == vg.seqno else { throw LVMError.staleMetadata(expected: vg.seqno, found: onDisk) }
        return try write(vg, expecting: onDisk, description: description)
    }

    /// Writes `vg` as seqno `expecting + 1`: per area, text into the circular buffer, then
    /// precommit (slot 1), then commit (slot 0, the atomic switch), syncing between the steps.
    private func write(_ vg: VolumeGroup, expecting seqno: UInt64, description: String) throws -> VolumeGroup {
        guard vg.physicalVolumes.count == 1, vg.physicalVolumes[0].id == uuid else {
            throw LVMError.unsupported("committing a VG that spans several PVs (or not this PV)")
        }
        var next = vg
        next.seqno = seqno + 1
        try next.validate()
        let pv = next.physicalVolumes[0]
        guard (pv.peStart + pv.peCount * next.extentSize) * 512 <= store.size else {
            throw LVMError.invalidMetadata("extents end past the device (\(store.size) bytes)")
        }
        let text = MetadataText(vg: next, description: description, creationHost: LVMHost.name, creationTime: LVMHost.now()).encode()
        let headers = try metadataAreas.map { try $0.readHeader(from: store) }
        for h in headers where text.count > h.maxTextSize {
            throw LVMError.metadataTooLarge(size: text.count, limit: h.maxTextSize)
        }
        var locations: [RawLocation] = []
        for (mda, var header) in zip(metadataAreas, headers) {
            if !header.committed.isEmpty {
                try MetadataArea.validate(header.committed, areaSize: header.areaSize, limit: header.maxTextSize)
            }
            let loc = try mda.writeText(text, at: header.nextOffset, header: header, to: store)
            try store.sync()
            header.precommitted = loc
            try mda.writeHeader(header, to: store)
            try store.sync()
            header.committed = loc
            header.precommitted = .none
            try mda.writeHeader(header, to: store)
            try store.sync()
            locations.append(loc)
        }
        knownLocations = locations
        return next
    }

    // MARK: LV data

    /// A store over the bytes of LV `name` of `vg` (which must be the VG on this PV).
    public func open(lv name: String, in vg: VolumeGroup) throws -> LogicalVolumeStore {
        try LogicalVolumeStore(pv: store, pvUUID: uuid, vg: vg, lv: name)
    }
}
