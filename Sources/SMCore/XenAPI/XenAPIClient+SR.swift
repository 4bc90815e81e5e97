/// The `SR.*` calls a storage driver makes (`SR._db_update`, `sm_config` and `other_config` upkeep).
extension XenAPIClient {
    /// `SR.get_by_uuid`: the reference of the SR with `uuid`.
    public func srGetByUUID(_ uuid: String) throws(XenAPIError) -> String {
        try XenAPIValue.string(callWithSession("SR.get_by_uuid", [.string(uuid)]), "SR.get_by_uuid")
    }

    /// `SR.get_VDIs`: the references of the SR's VDIs.
    public func srGetVDIs(_ sr: String) throws(XenAPIError) -> [String] {
        try XenAPIValue.refs(callWithSession("SR.get_VDIs", [.string(sr)]), "SR.get_VDIs")
    }

    /// `SR.get_virtual_allocation` in bytes.
    public func srGetVirtualAllocation(_ sr: String) throws(XenAPIError) -> Int64 {
        try XenAPIValue.int64(callWithSession("SR.get_virtual_allocation", [.string(sr)]), "SR.get_virtual_allocation")
    }

    /// `SR.set_virtual_allocation` (bytes, sent as a decimal string).
    public func srSetVirtualAllocation(_ sr: String, _ bytes: Int64) throws(XenAPIError) {
        _ = try callWithSession("SR.set_virtual_allocation", [.string(sr), XenAPIValue.int64(bytes)])
    }

    /// `SR.set_physical_size` (bytes, sent as a decimal string).
    public func srSetPhysicalSize(_ sr: String, _ bytes: Int64) throws(XenAPIError) {
        _ = try callWithSession("SR.set_physical_size", [.string(sr), XenAPIValue.int64(bytes)])
    }

    /// `SR.set_physical_utilisation` (bytes, sent as a decimal string).
    public func srSetPhysicalUtilisation(_ sr: String, _ bytes: Int64) throws(XenAPIError) {
        _ = try callWithSession("SR.set_physical_utilisation", [.string(sr), XenAPIValue.int64(bytes)])
    }

    /// `SR.get_sm_config`: the SR's `sm_config` map.
    public func srGetSMConfig(_ sr: String) throws(XenAPIError) -> [String: String] {
        try XenAPIValue.stringMap(callWithSession("SR.get_sm_config", [.string(sr)]), "SR.get_sm_config")
    }

    /// `SR.set_sm_config`: replaces the whole `sm_config` map.
    public func srSetSMConfig(_ sr: String, _ smConfig: [String: String]) throws(XenAPIError) {
        _ = try callWithSession("SR.set_sm_config", [.string(sr), XenAPIValue.map(smConfig)])
    }

    /// `SR.add_to_sm_config` (failure `MAP_DUPLICATE_KEY` when `key` is already there).
    public func srAddToSMConfig(_ sr: String, key: String, value: String) throws(XenAPIError) {
        _ = try callWithSession("SR.add_to_sm_config", [.string(sr), .string(key), .string(value)])
    }

    /// `SR.get_other_config`: the SR's `other_config` map.
    public func srGetOtherConfig(_ sr: String) throws(XenAPIError) -> [String: String] {
        try XenAPIValue.stringMap(callWithSession("SR.get_other_config", [.string(sr)]), "SR.get_other_config")
    }

    /// `SR.add_to_other_config` (failure `MAP_DUPLICATE_KEY` when `key` is already there).
    public func srAddToOtherConfig(_ sr: String, key: String, value: String) throws(XenAPIError) {
        _ = try callWithSession("SR.add_to_other_config", [.string(sr), .string(key), .string(value)])
    }
}
