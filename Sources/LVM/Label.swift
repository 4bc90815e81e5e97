import VHD

/// The `LABELONE` sector (one of sectors 0-3, lvm2 writes sector 1) that marks a PV and holds its header.
public struct Label: Equatable, Sendable {
    /// Bytes of a sector.
    public static let sectorSize = 512
    /// The label's identifier.
    public static let id: [UInt8] = Array("LABELONE".utf8)
    /// The label type of the text format.
    public static let type: [UInt8] = Array("LVM2 001".utf8)
    /// Offset of the PV header from the label start.
    public static let headerOffset = 32

    /// Sector number the label lives in (and records).
    public var sector: UInt64
    /// The PV header.
    public var pvHeader: PVHeader

    /// A label in `sector` (1 unless rewriting one found elsewhere).
    public init(sector: UInt64 = 1, pvHeader: PVHeader) {
        self.sector = sector
        self.pvHeader = pvHeader
    }

    /// The 512 bytes of the sector, crc included.
    public func encode() throws -> [UInt8] {
        var b = [UInt8](repeating: 0, count: Label.sectorSize)
        b.put(Label.id, at: 0)
        b.setLE64(sector, at: 8)
        b.setLE32(UInt32(Label.headerOffset), at: 20)
        b.put(Label.type, at: 24)
        try pvHeader.encode(into: &b, at: Label.headerOffset)
        b.setLE32(LVMChecksum.compute(b, 20..<Label.sectorSize), at: 16)
        return b
    }

    /// Decodes a label from the 512 bytes of sector `number`; nil when the sector holds no label id.
    public static func decode(_ b: [UInt8], sectorNumber: UInt64) throws -> Label? {
        guard b.count == sectorSize, Array(b[0..<8]) == id else { return nil }
        guard b.le64(8) == sectorNumber else { throw LVMError.invalidLabel("sector field \(b.le64(8)) in sector \(sectorNumber)") }
        let crc = LVMChecksum.compute(b, 20..<sectorSize)
        guard crc == b.le32(16) else { throw LVMError.invalidLabel("crc \(b.le32(16)) != computed \(crc)") }
        guard Array(b[24..<32]) == type else { throw LVMError.invalidLabel("type is not LVM2 001") }
        let off = Int(b.le32(20))
        guard off >= 32, off < sectorSize else { throw LVMError.invalidLabel("header offset \(off)") }
        return Label(sector: sectorNumber, pvHeader: try PVHeader.decode(b, at: off))
    }

    /// Finds the label in sectors 0-3 of `store` (one read of 2 KiB).
    public static func find(in store: BlockStore) throws -> Label {
        guard store.size >= 4 * UInt64(sectorSize) else { throw LVMError.noLabel }
        let head = try store.read(count: 4 * sectorSize, at: 0)
        for s in 0..<4 {
            if let label = try decode(Array(head[s * sectorSize..<(s + 1) * sectorSize]), sectorNumber: UInt64(s)) {
                return label
            }
        }
        throw LVMError.noLabel
    }
}
