/// Everything this library learns about one LUN when it opens it: identity, size, limits.
public struct ISCSILUNInfo: Sendable, Hashable {
    /// The LUN number on its target.
    public var lun: Int
    /// The SCSI id as `scsi_id -g -u` prints it (see `SCSIDeviceIdentification`).
    public var scsiID: String
    /// Standard INQUIRY data (vendor, product, revision).
    public var inquiry: SCSIStandardInquiry
    /// The unit serial number (VPD 0x80), trimmed.
    public var serial: String
    /// Capacity and block size (READ CAPACITY(16)).
    public var capacity: SCSICapacity
    /// Transfer and UNMAP limits (VPD 0xB0, 0xB2).
    public var limits: SCSIBlockLimits

    /// Size in bytes.
    public var size: UInt64 { capacity.bytes }
    /// Bytes per block.
    public var blockSize: Int { capacity.blockSize }
}

extension ISCSIConnection {
    /// Reads what `ISCSILUNInfo` holds for `lun` (INQUIRY, VPD 0x80, 0x83, 0xB0, 0xB2, READ
    /// CAPACITY(16)); the pages a LUN does not offer count as empty.
    func lunInfo(lun: Int) throws -> ISCSILUNInfo {
        let inquiry = try inquiry(lun: lun)
        let supported = (try? vpd(lun: lun, page: 0x00)).map { $0.count > 4 ? Set($0[4...]) : [] } ?? []
        func page(_ p: UInt8) throws -> [UInt8] { supported.contains(p) ? try vpd(lun: lun, page: p) : [] }
        let unitSerial = try page(0x80)
        let identification = try page(0x83)
        let id = SCSIDeviceIdentification(identification).scsiID(inquiry: inquiry)
            ?? SCSIDeviceIdentification.serialID(unitSerial: unitSerial, inquiry: inquiry) ?? ""
        let limits = SCSIBlockLimits(blockLimits: try page(0xB0), provisioning: try page(0xB2))
        let capacity = try readCapacity16(lun: lun)
        return ISCSILUNInfo(lun: lun, scsiID: id, inquiry: inquiry, serial: SCSIDeviceIdentification.unitSerial(unitSerial),
                            capacity: capacity, limits: limits)
    }

    /// The disks the target offers this initiator (LUNs that are direct-access block devices).
    func disks() throws -> [ISCSILUNInfo] {
        var out: [ISCSILUNInfo] = []
        for lun in try reportLUNs() {
            let inquiry = try inquiry(lun: lun)
            guard inquiry.isDisk else { continue }
            out.append(try lunInfo(lun: lun))
        }
        return out
    }
}
