/// A volume group as its text metadata describes it: a value; changes are made on a copy and
/// committed through a `PVDevice`.
public struct VolumeGroup: Equatable, Sendable {
    /// The VG name (free-form within lvm2's rules: `VG_XenStorage-<sr>`).
    public var name: String
    /// The VG's identifier.
    public var id: LVMUUID
    /// Version of the metadata: every commit writes `seqno + 1`.
    public var seqno: UInt64
    /// Status flags (`RESIZEABLE`, `READ`, `WRITE`, ...).
    public var status: [String]
    /// Compatible flags.
    public var flags: [String]
    /// Tags.
    public var tags: [String]
    /// Extent size in sectors.
    public var extentSize: UInt64
    /// Most LVs allowed (0: unlimited).
    public var maxLV: UInt64
    /// Most PVs allowed (0: unlimited).
    public var maxPV: UInt64
    /// `vgmetadatacopies` (0: unmanaged).
    public var metadataCopies: UInt64
    /// The PVs, in VG order.
    public var physicalVolumes: [PhysicalVolume]
    /// The LVs, in metadata order.
    public var logicalVolumes: [LogicalVolume]
    /// Keys this engine does not model (`system_id`, ...), written back unchanged.
    public var extra: [ConfigEntry]

    /// A VG with no LVs.
    public init(name: String, id: LVMUUID = .random(), seqno: UInt64 = 1, status: [String] = ["RESIZEABLE", "READ", "WRITE"],
                flags: [String] = [], tags: [String] = [], extentSize: UInt64, maxLV: UInt64 = 0, maxPV: UInt64 = 0,
                metadataCopies: UInt64 = 0, physicalVolumes: [PhysicalVolume], logicalVolumes: [LogicalVolume] = [],
                extra: [ConfigEntry] = []) {
        self.name = name
        self.id = id
        self.seqno = seqno
        self.status = status
        self.flags = flags
        self.tags = tags
        self.extentSize = extentSize
        self.maxLV = maxLV
        self.maxPV = maxPV
        self.metadataCopies = metadataCopies
        self.physicalVolumes = physicalVolumes
        self.logicalVolumes = logicalVolumes
        self.extra = extra
    }

    /// Extent size in bytes.
    public var extentBytes: UInt64 { extentSize * 512 }

    /// The LV called `name`, if any.
    public func lv(_ name: String) -> LogicalVolume? { logicalVolumes.first { $0.name == name } }

    /// The PV with key `key`, if any.
    public func pv(_ key: String) -> PhysicalVolume? { physicalVolumes.first { $0.key == key } }

    /// Size of `lv` in bytes.
    public func sizeInBytes(of lv: LogicalVolume) -> UInt64 { lv.extentCount * extentBytes }

    /// Total extents of all PVs.
    public var totalExtents: UInt64 { physicalVolumes.reduce(0) { $0 + $1.peCount } }

    /// Extents not used by any LV (allocatable PVs only).
    public var freeExtents: UInt64 { freeRanges().reduce(0) { $0 + UInt64($1.extents.count) } }

    /// Free space in bytes.
    public var freeBytes: UInt64 { freeExtents * extentBytes }

    /// The free ranges of physical extents, PV by PV in VG order, ascending within each PV.
    public func freeRanges() -> [(pv: String, extents: Range<UInt64>)] {
        var out: [(pv: String, extents: Range<UInt64>)] = []
        for pv in physicalVolumes where pv.isAllocatable {
            let used = logicalVolumes.flatMap(\.segments).filter { $0.pv == pv.key }.map(\.pvExtents).sorted { $0.lowerBound < $1.lowerBound }
            var cursor: UInt64 = 0
            for r in used {
                if r.lowerBound > cursor { out.append((pv.key, cursor..<min(r.lowerBound, pv.peCount))) }
                cursor = max(cursor, r.upperBound)
            }
            if cursor < pv.peCount { out.append((pv.key, cursor..<pv.peCount)) }
        }
        return out
    }

    /// Checks the layout: names, PV references, segment continuity, extents inside their PV and
    /// used by one LV only, sizes that do not overflow. Throws `invalidMetadata` on the first problem.
    public func validate() throws {
        func bad(_ r: String) -> LVMError { .invalidMetadata(r) }
        do { try LVMName.checkVG(name) } catch { throw bad("VG name \"\(name)\"") }
        guard extentSize > 0, extentSize <= 1 << 32 else { throw bad("extent_size \(extentSize)") }
        guard !physicalVolumes.isEmpty else { throw bad("no physical volumes") }
        var pvKeys = Set<String>()
        for pv in physicalVolumes {
            guard pvKeys.insert(pv.key).inserted else { throw bad("PV key \(pv.key) twice") }
            let (span, o1) = pv.peCount.multipliedReportingOverflow(by: extentSize)
            let (end, o2) = span.addingReportingOverflow(pv.peStart)
            guard !o1, !o2, end <= 1 << 53 else { throw bad("PV \(pv.key): pe_count \(pv.peCount) overflows") }
            guard pv.devSize == 0 || end <= pv.devSize else {
                throw bad("PV \(pv.key): extents end at sector \(end), past dev_size \(pv.devSize)")
            }
        }
        var lvNames = Set<String>()
        var used: [String: [Range<UInt64>]] = [:]
        for lv in logicalVolumes {
            guard lvNames.insert(lv.name).inserted else { throw bad("LV \(lv.name) twice") }
            do { try LVMName.checkVG(lv.name) } catch { throw bad("LV name \"\(lv.name)\"") }
            var next: UInt64 = 0
            for seg in lv.segments {
                guard seg.startExtent == next else { throw bad("LV \(lv.name): segment at extent \(seg.startExtent), expected \(next)") }
                guard seg.extentCount > 0 else { throw bad("LV \(lv.name): empty segment") }
                guard let pv = pv(seg.pv) else { throw bad("LV \(lv.name): unknown PV \(seg.pv)") }
                guard seg.pvExtent <= pv.peCount, seg.extentCount <= pv.peCount - seg.pvExtent else {
                    throw bad("LV \(lv.name): extents \(seg.pvExtent)+\(seg.extentCount) outside \(seg.pv) (\(pv.peCount) extents)")
                }
                next += seg.extentCount
                used[seg.pv, default: []].append(seg.pvExtents)
            }
        }
        for (pv, ranges) in used {
            let sorted = ranges.sorted { $0.lowerBound < $1.lowerBound }
            for (a, b) in zip(sorted, sorted.dropFirst()) where b.lowerBound < a.upperBound {
                throw bad("extents \(b.lowerBound)..<\(a.upperBound) of \(pv) used twice")
            }
        }
    }
}
