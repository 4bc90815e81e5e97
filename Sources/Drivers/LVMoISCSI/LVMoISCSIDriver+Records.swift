import SMCore

/// The VDI records in the SR's `MGT` volume, as the Python SM keeps them there (a slot per VDI
/// in `LVHDMetadata`), so that another pool attaching the SR, or the Python SM, finds every
/// VDI's name, type and snapshot relation.
extension LVMoISCSIDriver: VDIRecordKeeper {
    /// The SR's LVHD container.
    private func lvhd(_ c: DriverContext) throws -> LVHDContainer {
        let config = try LVMoISCSIConfiguration(c, answers: answers)
        return try container(c, store: try lun(c, config), config: config)
    }

    /// The metadata in `MGT`, or a new one for this SR when none was written. What cannot be
    /// read is an error (nothing overwrites records it could not read), except when `rebuilding`
    /// (`sr_attach`, which fills the records in again from xapi's and the LVs).
    private func metadata(_ c: DriverContext, _ container: LVHDContainer, rebuilding: Bool = false) throws -> LVHDMetadata {
        do {
            if let m = try container.readMetadata() { return m }
        } catch let e as LVHDError where rebuilding {
            c.log.warning("the SR metadata in MGT cannot be read (\(e)); writing it anew")
        }
        let config = try LVMoISCSIConfiguration(c, answers: answers)
        return LVHDMetadata(sr: .init(uuid: try c.srUUID(), allocation: config.allocation.rawValue))
    }

    /// Adds or replaces the slots of the records `make` derives from the kept ones, in one write.
    public func keep(_ c: DriverContext, _ make: ([String: KeptVDIRecord]) -> [KeptVDIRecord]) throws {
        let container = try lvhd(c)
        var m = try metadata(c, container)
        var kept: [String: KeptVDIRecord] = [:]
        for e in m.vdis { kept[e.uuid] = Self.record(e) }
        let records = make(kept)
        guard !records.isEmpty else { return }
        for r in records { m.update(Self.entry(r)) }
        try container.writeMetadata(m)
    }

    /// Marks VDI `uuid`'s slot deleted.
    public func drop(_ c: DriverContext, vdi uuid: String) throws {
        try lvhd(c).removeVDI(uuid: uuid)
    }

    /// The VDIs' slots, by uuid.
    public func keptRecords(_ c: DriverContext) throws -> [String: KeptVDIRecord] {
        guard let m = try lvhd(c).readMetadata() else { return [:] }
        var out: [String: KeptVDIRecord] = [:]
        for e in m.vdis { out[e.uuid] = Self.record(e) }
        return out
    }

    /// A slot for every VDI of `volumes` (xapi's record, else the slot's own, else a default),
    /// none for any other; one write, and none when nothing changes.
    public func reconcile(_ c: DriverContext, xapi: [String: KeptVDIRecord], volumes: Set<String>) throws {
        let container = try lvhd(c)
        let before = try metadata(c, container, rebuilding: true)
        var m = before
        for e in m.vdis where !volumes.contains(e.uuid) { m.remove(uuid: e.uuid) }
        for uuid in volumes.sorted() {
            if let r = xapi[uuid] { m.update(Self.entry(r)) } else if m.vdi(uuid) == nil { m.update(Self.entry(KeptVDIRecord(uuid: uuid))) }
        }
        if m != before { try container.writeMetadata(m) }
    }

    /// A slot of `r`.
    static func entry(_ r: KeptVDIRecord) -> LVHDMetadata.VDIEntry {
        LVHDMetadata.VDIEntry(uuid: r.uuid, nameLabel: r.nameLabel, nameDescription: r.nameDescription, isASnapshot: r.isASnapshot,
                              snapshotOf: r.snapshotOf, snapshotTime: r.snapshotTime, type: r.type, vdiType: "vhd",
                              readOnly: r.readOnly, managed: r.managed, metadataOfPool: r.metadataOfPool)
    }

    /// The record a slot holds.
    static func record(_ e: LVHDMetadata.VDIEntry) -> KeptVDIRecord {
        var r = KeptVDIRecord(uuid: e.uuid)
        r.nameLabel = e.nameLabel
        r.nameDescription = e.nameDescription
        r.type = e.type
        r.readOnly = e.readOnly
        r.managed = e.managed
        r.isASnapshot = e.isASnapshot
        r.snapshotOf = e.snapshotOf
        r.snapshotTime = e.snapshotTime
        r.metadataOfPool = e.metadataOfPool
        return r
    }
}
