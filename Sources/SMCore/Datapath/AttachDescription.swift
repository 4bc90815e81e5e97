import Foundation

/// The ATTACH result the Python SM gives for a VHD VDI served over NBD (responses.md §2.3, §2.6):
/// `params_nbd` pointing at the datapath's socket, the read-caching verdict and `xenstore_data`
/// with the VDI uuid and synthetic SCSI inquiry pages.
public enum AttachDescription {
    /// SCSI INQUIRY page 0x80 (unit serial number): `00 80 00 12`, the first 16 characters of
    /// the uuid, two spaces; base64.
    public static func scsiPage80(_ uuid: String) -> String {
        let serial = Array(uuid.utf8.prefix(16)) + Array("  ".utf8)
        return Data([0x00, 0x80, 0x00, UInt8(serial.count)] + serial).base64EncodedString()
    }

    /// SCSI INQUIRY page 0x83 (device identification): `00 83 00 31 02 01 00 2d`, `XENSRC  `,
    /// the uuid, one space; base64.
    public static func scsiPage83(_ uuid: String) -> String {
        let id = Array("XENSRC  ".utf8) + Array(uuid.utf8) + Array(" ".utf8)
        let designator: [UInt8] = [0x02, 0x01, 0x00, UInt8(id.count)] + id
        return Data([0x00, 0x83, 0x00, UInt8(designator.count)] + designator).base64EncodedString()
    }

    /// `xenstore_data`: `vdi-uuid`, `scsi/0x12/0x80`, `scsi/0x12/0x83`, plus `storage-type` when given
    /// (only `vdi_attach_from_config` results carry it).
    public static func xenstoreData(vdi: String, storageType: String? = nil) -> SMAPIStringMap {
        var m: SMAPIStringMap = ["vdi-uuid": vdi, "scsi/0x12/0x80": scsiPage80(vdi), "scsi/0x12/0x83": scsiPage83(vdi)]
        if let t = storageType { m["storage-type"] = t }
        return m
    }

    /// The `vdi_attach` result: `params_nbd`, `o_direct` false unless a read-only attach of a VDI
    /// without parent (`RO_WITH_NO_PARENT`), `xenstore_data`.
    public static func attach(directory: DatapathDirectory, vdi: String, readOnlyWithoutParent: Bool) -> SMAPIAttachResult {
        SMAPIAttachResult(paramsNBD: directory.paramsNBD(export: vdi), oDirect: readOnlyWithoutParent,
                          oDirectReason: readOnlyWithoutParent ? "RO_WITH_NO_PARENT" : "",
                          xenstoreData: xenstoreData(vdi: vdi))
    }

    /// The `vdi_attach_from_config` result: no session, so `o_direct` true with
    /// `LICENSE_RESTRICTION`, and `storage-type` in `xenstore_data`.
    public static func attachFromConfig(directory: DatapathDirectory, vdi: String, storageType: String) -> SMAPIAttachResult {
        SMAPIAttachResult(paramsNBD: directory.paramsNBD(export: vdi), oDirect: true, oDirectReason: "LICENSE_RESTRICTION",
                          xenstoreData: xenstoreData(vdi: vdi, storageType: storageType))
    }
}
