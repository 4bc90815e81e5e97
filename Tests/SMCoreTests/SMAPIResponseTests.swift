import Foundation
import Testing
@testable import SMCore

/// The response builders reproduce the literal documents of responses.md byte for byte, and
/// the typed readers recover what the builders were given.
@Suite struct SMAPIResponseTests {
    static let sr = "7d3a1c52-6e0b-4f8e-b6a9-2c41d0e95f13"
    static let vdi = "c2f4e8a1-93b7-4d25-8e6f-0a1b2c3d4e5f"
    static let snapshot = "5e9d0b7c-1a2f-4c3e-9b8d-7f6a5e4d3c2b"
    static let nbd = "nbd:unix:/run/blktap-control/nbd/\(sr)/\(vdi):exportname=\(vdi)"

    /// The `xenstore_data` of the examples: vdi-uuid and the two synthetic SCSI inquiry pages.
    static func xenstoreData(_ extra: KeyValuePairs<String, String> = [:]) -> SMAPIStringMap {
        let page80 = Data([0x00, 0x80, 0x00, 0x12]) + Data(vdi.prefix(16).utf8) + Data("  ".utf8)
        let page83 = Data([0x00, 0x83, 0x00, 0x31, 0x02, 0x01, 0x00, 0x2D]) + Data("XENSRC  \(vdi) ".utf8)
        var map: SMAPIStringMap = ["vdi-uuid": vdi, "scsi/0x12/0x80": page80.base64EncodedString(),
                                   "scsi/0x12/0x83": page83.base64EncodedString()]
        for (key, value) in extra { map[key] = value }
        return map
    }

    static let nfsInfo = SMAPIDriverInfo(
        name: "NFS VHD", description: "SR plugin which stores disks as VHD files on a remote NFS filesystem",
        vendor: "Citrix Systems Inc", copyright: "(C) 2008 Citrix Systems Inc", driverVersion: "1.0",
        requiredAPIVersion: "1.0",
        capabilities: ["SR_PROBE", "SR_UPDATE", "SR_CACHING", "VDI_CREATE", "VDI_DELETE", "VDI_ATTACH", "VDI_DETACH",
                       "VDI_UPDATE", "VDI_CLONE", "VDI_SNAPSHOT", "VDI_RESIZE", "VDI_GENERATE_CONFIG", "VDI_MIRROR",
                       "VDI_RESET_ON_BOOT/2", "ATOMIC_PAUSE", "VDI_CONFIG_CBT", "VDI_ACTIVATE", "VDI_DEACTIVATE",
                       "THIN_PROVISIONING", "VDI_READ_CACHING"],
        configuration: [
            .init(key: "server", description: "hostname or IP address of NFS server (required)"),
            .init(key: "serverpath", description: "path on remote server (required)"),
            .init(key: "nfsversion", description: "NFS protocol version - 3, 4, 4.0, 4.1"),
        ])

    /// Checks the printed text against the literal and that the literal decodes to the same response.
    func check(_ response: XMLRPCMethodResponse, _ literal: String,
               sourceLocation: SourceLocation = #_sourceLocation) throws {
        #expect(SMAPIResponse.text(response) == literal, sourceLocation: sourceLocation)
        #expect(try XMLRPCDecoder().decodeMethodResponse(literal) == response, sourceLocation: sourceLocation)
    }

    @Test("§2.1 NIL")
    func unit() throws {
        try check(SMAPIResponse.unit(), ResponseLiterals.unit)
    }

    @Test("§2.2 VDI_INFO")
    func vdiInfo() throws {
        try check(SMAPIResponse.vdiInfo(uuid: Self.snapshot), ResponseLiterals.vdiInfo)
        let value = try XMLRPCDecoder().decodeMethodResponse(ResponseLiterals.vdiInfo).get()
        #expect(try SMAPIVDIInfo(value) == SMAPIVDIInfo(uuid: Self.snapshot, location: Self.snapshot))
        #expect(throws: SMAPIResultError.missingField("location")) {
            try SMAPIVDIInfo(.struct([XMLRPCMember("uuid", "x")]))
        }
    }

    @Test("§2.3 ATTACH for ext/nfs and lvmoiscsi")
    func attach() throws {
        let file = SMAPIAttachResult(paramsNBD: Self.nbd, oDirect: false, oDirectReason: "", xenstoreData: Self.xenstoreData())
        try check(SMAPIResponse.attach(file), ResponseLiterals.attachFile)
        let lvm = SMAPIAttachResult(paramsNBD: Self.nbd, oDirect: true, oDirectReason: "SR_NOT_SUPPORTED",
                                    xenstoreData: Self.xenstoreData())
        let lvmLiteral = ResponseLiterals.attachFile
            .replacingOccurrences(of: "<value><boolean>0</boolean></value>", with: "<value><boolean>1</boolean></value>")
            .replacingOccurrences(of: "<value><string></string></value>", with: "<value><string>SR_NOT_SUPPORTED</string></value>")
        try check(SMAPIResponse.attach(lvm), lvmLiteral)
        let value = try XMLRPCDecoder().decodeMethodResponse(lvmLiteral).get()
        #expect(try SMAPIAttachResult(value) == lvm)
        #expect(throws: SMAPIResultError.wrongFieldType("o_direct", expected: "boolean", found: "string")) {
            try SMAPIAttachResult(.struct([XMLRPCMember("o_direct", "yes")]))
        }
    }

    @Test("§2.4 DRIVER_INFO for nfs")
    func driverInfo() throws {
        try check(SMAPIResponse.driverInfo(Self.nfsInfo), ResponseLiterals.driverInfoNFS)
        let value = try XMLRPCDecoder().decodeMethodResponse(ResponseLiterals.driverInfoNFS).get()
        #expect(try SMAPIDriverInfo(value) == Self.nfsInfo)
        #expect(throws: SMAPIResultError.missingField("configuration")) { try SMAPIDriverInfo(.struct([])) }
    }

    @Test("ATOMIC_PAUSE implies VDI_ACTIVATE and VDI_DEACTIVATE, as util.sr_get_driver_info adds them")
    func atomicPause() {
        var info = Self.nfsInfo
        info.capabilities = ["SR_PROBE", "ATOMIC_PAUSE", "VDI_DEACTIVATE"]
        #expect(info.advertisedCapabilities == ["SR_PROBE", "ATOMIC_PAUSE", "VDI_DEACTIVATE", "VDI_ACTIVATE"])
        info.capabilities = ["SR_PROBE"]
        #expect(info.advertisedCapabilities == ["SR_PROBE"])
        info.supportedImageFormats = ["vhd", "raw"]
        #expect(info.xmlrpcValue[member: "supported_image_formats"] == ["vhd", "raw"])
    }

    @Test("§2.5 STRING results: sr_probe (nfs, lvm), vdi_generate_config, vdi_list_changed_blocks")
    func strings() throws {
        let nfsProbe = "<?xml version=\"1.0\" ?>\n<SRlist>\n\t<SR>\n\t\t<UUID>\(Self.sr)</UUID>\n\t</SR>\n</SRlist>\n"
        try check(SMAPIResponse.string(nfsProbe), ResponseLiterals.probeNFS)
        let lvmProbe = "<?xml version=\"1.0\" ?>\n<SRlist>\n\t<SR>\n\t\t<UUID>\(Self.sr)</UUID>\n"
            + "\t\t<Devlist>/dev/disk/by-id/scsi-36001405c3a4b5d6e7f8091a2b3c4d5e6</Devlist>\n"
            + "\t\t<size>107369988096</size>\n\t</SR>\n</SRlist>\n"
        try check(SMAPIResponse.string(lvmProbe), ResponseLiterals.probeLVM)

        let config = XMLRPCMethodCall(methodName: "vdi_attach_from_config", params: [.struct([
            XMLRPCMember("device_config", .stringStruct(["SRmaster": "true", "server": "192.0.2.10", "serverpath": "/export/xenserver"])),
            XMLRPCMember("sr_uuid", .string(Self.sr)),
            XMLRPCMember("vdi_uuid", .string(Self.vdi)),
            XMLRPCMember("sr_sm_config", .struct([])),
            XMLRPCMember("sr_other_config", .struct([])),
            XMLRPCMember("command", "vdi_attach_from_config"),
        ])])
        let configText = XMLRPCEncoder(style: .python).encode(config)
        try check(SMAPIResponse.string(configText), ResponseLiterals.generateConfigNFS)
        // The generated call is exactly the stored nfs-vdi_attach_from_config.xml once filled in.
        let stored = try Fixtures.request("nfs-vdi_attach_from_config.xml")
            .replacingOccurrences(of: "{{NFS_SERVER}}", with: "192.0.2.10")
            .replacingOccurrences(of: "{{NFS_PATH}}", with: "/export/xenserver")
            .replacingOccurrences(of: "{{SR_UUID}}", with: Self.sr)
            .replacingOccurrences(of: "{{VDI_UUID}}", with: Self.vdi)
        #expect(configText == stored + "\n")

        var bitmap = [UInt8](repeating: 0, count: 16)
        for block in [0, 1, 64] { bitmap[block / 8] |= 0x80 >> (block % 8) }
        try check(SMAPIResponse.string(Data(bitmap).base64EncodedString()), ResponseLiterals.listChangedBlocks)
    }

    @Test("§2.6 vdi_attach_from_config results for nfs and lvmoiscsi")
    func attachFromConfig() throws {
        let nfs = SMAPIAttachResult(paramsNBD: Self.nbd, oDirect: true, oDirectReason: "LICENSE_RESTRICTION",
                                    xenstoreData: Self.xenstoreData(["storage-type": "nfs"]))
        try check(SMAPIResponse.attach(nfs), ResponseLiterals.attachFromConfigNFS)
        let lvm = SMAPIAttachResult(params: "/dev/VG_XenStorage-\(Self.sr)/LV-\(Self.vdi)",
                                    xenstoreData: Self.xenstoreData(["storage-type": "lvm", "vdi-type": "aio"]))
        try check(SMAPIResponse.attach(lvm), ResponseLiterals.attachFromConfigLVM)
        let value = try XMLRPCDecoder().decodeMethodResponse(ResponseLiterals.attachFromConfigLVM).get()
        #expect(try SMAPIAttachResult(value) == lvm)
    }

    @Test("§3 faults")
    func faults() throws {
        try check(SMAPIResponse.fault(SMAPIError(.VDIUnavailable, opterr: "VDI \(Self.vdi) not found")),
                  ResponseLiterals.faultVDIUnavailable)
        try check(SMAPIResponse.fault(.generic("'NoneType' object has no attribute 'xenapi'")), ResponseLiterals.faultGeneric)
    }
}
