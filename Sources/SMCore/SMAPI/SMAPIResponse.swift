/// Builders for the responses an SMAPIv1 driver prints, one per result shape of
/// `responses.md` §2-3, and the text exactly as the Python SM prints it.
public enum SMAPIResponse {
    /// NIL: `<value><nil/></value>`, the result of commands that return nothing.
    public static func unit() -> XMLRPCMethodResponse {
        .success(.nil)
    }

    /// VDI_INFO: `{location, uuid}` of the VDI created, snapshotted, cloned, resized or introduced.
    public static func vdiInfo(_ info: SMAPIVDIInfo) -> XMLRPCMethodResponse {
        .success(info.xmlrpcValue)
    }

    /// VDI_INFO for VDI `uuid` at `location` (defaults to the uuid).
    public static func vdiInfo(uuid: String, location: String? = nil) -> XMLRPCMethodResponse {
        vdiInfo(SMAPIVDIInfo(uuid: uuid, location: location))
    }

    /// ATTACH: the `vdi_attach` (or `vdi_attach_from_config`) result.
    public static func attach(_ result: SMAPIAttachResult) -> XMLRPCMethodResponse {
        .success(result.xmlrpcValue)
    }

    /// DRIVER_INFO: the `sr_get_driver_info` result.
    public static func driverInfo(_ info: SMAPIDriverInfo) -> XMLRPCMethodResponse {
        .success(info.xmlrpcValue)
    }

    /// STRING: `sr_probe` XML, `vdi_generate_config` call document, `vdi_list_changed_blocks` base64.
    public static func string(_ text: String) -> XMLRPCMethodResponse {
        .success(.string(text))
    }

    /// A fault carrying `error` (`faultCode` and `faultString`).
    public static func fault(_ error: SMAPIError) -> XMLRPCMethodResponse {
        .fault(error.fault)
    }

    /// The document as the Python SM prints it (`xmlrpc.client.dumps`, ending in one newline).
    public static func text(_ response: XMLRPCMethodResponse) -> String {
        XMLRPCEncoder(style: .python).encode(response)
    }
}
