/// What an SR keeps of one VDI's xapi record on its own storage (LVHD's `MGT` volume), so that
/// a pool attaching the SR later (another pool, disaster recovery) finds each VDI's name, type
/// and snapshot relation, not only its data.
public struct KeptVDIRecord: Sendable, Equatable {
    /// The VDI uuid.
    public var uuid: String
    /// name_label.
    public var nameLabel: String = ""
    /// name_description.
    public var nameDescription: String = ""
    /// xapi's VDI type (`user`, `system`, `metadata`, ...).
    public var type: String = "user"
    /// read_only.
    public var readOnly: Bool = false
    /// managed (false for base copies).
    public var managed: Bool = true
    /// is_a_snapshot.
    public var isASnapshot: Bool = false
    /// The uuid of the VDI it is a snapshot of, or empty.
    public var snapshotOf: String = ""
    /// snapshot_time as xapi prints it, or empty.
    public var snapshotTime: String = ""
    /// metadata_of_pool (a pool ref), or empty.
    public var metadataOfPool: String = ""

    /// A record of VDI `uuid` with xapi's defaults.
    public init(uuid: String) { self.uuid = uuid }

    /// VDI `uuid`'s record as the SM introduces it with `fields` (`snapshotOf`: the uuid `fields`'
    /// ref names, resolved by the caller).
    public init(uuid: String, fields f: VDIRecordFields, snapshotOf: String = "") {
        self.uuid = uuid
        nameLabel = f.nameLabel
        nameDescription = f.nameDescription
        type = f.type
        readOnly = f.readOnly
        managed = f.managed
        isASnapshot = f.isASnapshot
        self.snapshotOf = snapshotOf
        snapshotTime = f.isASnapshot ? f.snapshotTime : ""
        metadataOfPool = f.metadataOfPool == "OpaqueRef:NULL" ? "" : f.metadataOfPool
    }

    /// The fields `sr_scan` introduces the VDI with (`snapshot_of` left for the caller to resolve).
    public var fields: VDIRecordFields {
        var f = VDIRecordFields()
        f.nameLabel = nameLabel
        f.nameDescription = nameDescription
        f.type = type
        f.readOnly = readOnly
        f.managed = managed
        f.isASnapshot = isASnapshot
        if isASnapshot && !snapshotTime.isEmpty { f.snapshotTime = snapshotTime }
        if metadataOfPool.hasPrefix("OpaqueRef:") { f.metadataOfPool = metadataOfPool }
        return f
    }
}

/// A driver whose SR keeps its VDIs' records itself (LVHD: the `MGT` volume, in the Python SM's
/// format). The service tells it of every record it makes, changes or removes, on the SR master;
/// `sr_attach` reconciles the kept records with xapi's and with the volumes there are; `sr_scan`
/// introduces VDIs xapi does not know with the kept record.
public protocol VDIRecordKeeper {
    /// Adds the records `make` derives from the kept ones (by uuid), or replaces the kept ones of
    /// the same VDIs: one read and one write of the SR's copy.
    func keep(_ context: DriverContext, _ make: ([String: KeptVDIRecord]) -> [KeptVDIRecord]) throws
    /// Removes VDI `uuid`'s record (nothing when it has none).
    func drop(_ context: DriverContext, vdi uuid: String) throws
    /// The kept records, by VDI uuid.
    func keptRecords(_ context: DriverContext) throws -> [String: KeptVDIRecord]
    /// Makes the kept records those of `volumes` (the VDIs there are): xapi's record where
    /// `xapi` has one, else the kept one, else a default; records of other VDIs go.
    func reconcile(_ context: DriverContext, xapi: [String: KeptVDIRecord], volumes: Set<String>) throws
}
