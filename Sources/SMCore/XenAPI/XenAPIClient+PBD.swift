/// The `PBD.*` calls a storage driver makes: finding this host's PBD of an SR and keeping keys
/// of its `other_config` (`multipathed`, `mpath-<SCSIid>`, `iscsi_sessions`).
extension XenAPIClient {
    /// `SR.get_PBDs`: the references of the SR's PBDs.
    public func srGetPBDs(_ sr: String) throws(XenAPIError) -> [String] {
        try XenAPIValue.refs(callWithSession("SR.get_PBDs", [.string(sr)]), "SR.get_PBDs")
    }

    /// `PBD.get_host`.
    public func pbdGetHost(_ pbd: String) throws(XenAPIError) -> String {
        try XenAPIValue.string(callWithSession("PBD.get_host", [.string(pbd)]), "PBD.get_host")
    }

    /// `PBD.get_other_config`.
    public func pbdGetOtherConfig(_ pbd: String) throws(XenAPIError) -> [String: String] {
        try XenAPIValue.stringMap(callWithSession("PBD.get_other_config", [.string(pbd)]), "PBD.get_other_config")
    }

    /// `PBD.remove_from_other_config` (no failure when the key is absent).
    public func pbdRemoveFromOtherConfig(_ pbd: String, key: String) throws(XenAPIError) {
        _ = try callWithSession("PBD.remove_from_other_config", [.string(pbd), .string(key)])
    }

    /// `PBD.add_to_other_config` (failure `MAP_DUPLICATE_KEY` when `key` is already there).
    public func pbdAddToOtherConfig(_ pbd: String, key: String, value: String) throws(XenAPIError) {
        _ = try callWithSession("PBD.add_to_other_config", [.string(pbd), .string(key), .string(value)])
    }
}
