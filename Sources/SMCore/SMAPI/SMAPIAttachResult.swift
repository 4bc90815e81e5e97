/// The ATTACH result of `vdi_attach` (and `vdi_attach_from_config`): where the disk's data is served.
public struct SMAPIAttachResult: Sendable, Hashable {
    /// `params`: a block device path; when absent xapi uses `params_nbd` alone.
    public var params: String?
    /// `params_nbd`: the NBD address, `nbd:unix:<socket>:exportname=<name>` (required by xapi).
    public var paramsNBD: String?
    /// `o_direct`: whether the backend must bypass the page cache (xapi's default is true).
    public var oDirect: Bool?
    /// `o_direct_reason`: why read caching is off (`LICENSE_RESTRICTION`, `SR_NOT_SUPPORTED`, …).
    public var oDirectReason: String?
    /// `xenstore_data`: keys xapi writes under the VBD's xenstore backend (`vdi-uuid`, `scsi/…`).
    public var xenstoreData: SMAPIStringMap?

    /// A result with the given members (absent ones nil).
    public init(params: String? = nil, paramsNBD: String? = nil, oDirect: Bool? = nil,
                oDirectReason: String? = nil, xenstoreData: SMAPIStringMap? = nil) {
        self.params = params
        self.paramsNBD = paramsNBD
        self.oDirect = oDirect
        self.oDirectReason = oDirectReason
        self.xenstoreData = xenstoreData
    }

    /// Reads the result like xapi's `parse_attach_result`, but leaves `params_nbd` optional so
    /// `vdi_attach_from_config` results (which may carry only `params`) read too.
    public init(_ value: XMLRPCValue) throws(SMAPIResultError) {
        let reader = try SMAPIResultReader(value)
        var oDirect: Bool?
        if let flag = reader.field("o_direct") {
            guard let bool = flag.boolValue else {
                throw .wrongFieldType("o_direct", expected: "boolean", found: flag.typeName)
            }
            oDirect = bool
        }
        var xenstoreData: SMAPIStringMap?
        if let data = reader.field("xenstore_data") {
            guard let map = SMAPIStringMap(data) else {
                throw .wrongFieldType("xenstore_data", expected: "struct of strings", found: data.typeName)
            }
            xenstoreData = map
        }
        self.init(params: try reader.optionalString("params"), paramsNBD: try reader.optionalString("params_nbd"),
                  oDirect: oDirect, oDirectReason: try reader.optionalString("o_direct_reason"),
                  xenstoreData: xenstoreData)
    }

    /// The struct, members in the Python SM's order, absent ones left out: `params`,
    /// `params_nbd`, `o_direct`, `o_direct_reason`, `xenstore_data`.
    public var xmlrpcValue: XMLRPCValue {
        var members: [XMLRPCMember] = []
        if let params { members.append(XMLRPCMember("params", .string(params))) }
        if let paramsNBD { members.append(XMLRPCMember("params_nbd", .string(paramsNBD))) }
        if let oDirect { members.append(XMLRPCMember("o_direct", .boolean(oDirect))) }
        if let oDirectReason { members.append(XMLRPCMember("o_direct_reason", .string(oDirectReason))) }
        if let xenstoreData { members.append(XMLRPCMember("xenstore_data", xenstoreData.xmlrpcValue)) }
        return .struct(members)
    }
}
