/// The `VDI.*` calls a storage driver makes (`VDI._db_introduce`, `_db_update`, `_db_forget`, …).
extension XenAPIClient {
    /// `VDI.db_introduce`: creates the VDI record with all 19 fields and returns its reference.
    @discardableResult
    public func vdiDBIntroduce(_ introduction: XenAPIVDIIntroduction) throws(XenAPIError) -> String {
        try XenAPIValue.string(callWithSession("VDI.db_introduce", introduction.parameters), "VDI.db_introduce")
    }

    /// `VDI.db_forget`: removes the VDI record (not the data).
    public func vdiDBForget(_ vdi: String) throws(XenAPIError) {
        _ = try callWithSession("VDI.db_forget", [.string(vdi)])
    }

    /// `VDI.get_by_uuid`: the reference of the VDI with `uuid` (failure `UUID_INVALID` when none).
    public func vdiGetByUUID(_ uuid: String) throws(XenAPIError) -> String {
        try XenAPIValue.string(callWithSession("VDI.get_by_uuid", [.string(uuid)]), "VDI.get_by_uuid")
    }

    /// `VDI.get_record`: the VDI's record.
    public func vdiGetRecord(_ vdi: String) throws(XenAPIError) -> XenAPIVDIRecord {
        try XenAPIVDIRecord(callWithSession("VDI.get_record", [.string(vdi)]))
    }

    /// `VDI.get_all_records_where`: the records matching `expression` (e.g. `field "SR" = "<sr ref>"`), by reference.
    public func vdiGetAllRecordsWhere(_ expression: String) throws(XenAPIError) -> [String: XenAPIVDIRecord] {
        let result = try callWithSession("VDI.get_all_records_where", [.string(expression)])
        guard let members = result.structMembers else {
            throw .protocolError("VDI.get_all_records_where: expected a struct, found \(result.typeName)")
        }
        var records: [String: XenAPIVDIRecord] = [:]
        for member in members { records[member.name] = try XenAPIVDIRecord(member.value) }
        return records
    }

    /// `VDI.get_uuid`: the uuid of the VDI `vdi`.
    public func vdiGetUUID(_ vdi: String) throws(XenAPIError) -> String {
        try XenAPIValue.string(callWithSession("VDI.get_uuid", [.string(vdi)]), "VDI.get_uuid")
    }

    /// `VDI.get_sm_config`: the VDI's `sm_config` map.
    public func vdiGetSMConfig(_ vdi: String) throws(XenAPIError) -> [String: String] {
        try XenAPIValue.stringMap(callWithSession("VDI.get_sm_config", [.string(vdi)]), "VDI.get_sm_config")
    }

    /// `VDI.set_virtual_size` (bytes, sent as a decimal string).
    public func vdiSetVirtualSize(_ vdi: String, _ bytes: Int64) throws(XenAPIError) {
        _ = try callWithSession("VDI.set_virtual_size", [.string(vdi), XenAPIValue.int64(bytes)])
    }

    /// `VDI.set_physical_utilisation` (bytes, sent as a decimal string).
    public func vdiSetPhysicalUtilisation(_ vdi: String, _ bytes: Int64) throws(XenAPIError) {
        _ = try callWithSession("VDI.set_physical_utilisation", [.string(vdi), XenAPIValue.int64(bytes)])
    }

    /// `VDI.set_read_only`.
    public func vdiSetReadOnly(_ vdi: String, _ readOnly: Bool) throws(XenAPIError) {
        _ = try callWithSession("VDI.set_read_only", [.string(vdi), .boolean(readOnly)])
    }

    /// `VDI.set_sm_config`: replaces the whole `sm_config` map.
    public func vdiSetSMConfig(_ vdi: String, _ smConfig: [String: String]) throws(XenAPIError) {
        _ = try callWithSession("VDI.set_sm_config", [.string(vdi), XenAPIValue.map(smConfig)])
    }

    /// `VDI.add_to_sm_config` (failure `MAP_DUPLICATE_KEY` when `key` is already there).
    public func vdiAddToSMConfig(_ vdi: String, key: String, value: String) throws(XenAPIError) {
        _ = try callWithSession("VDI.add_to_sm_config", [.string(vdi), .string(key), .string(value)])
    }

    /// `VDI.remove_from_sm_config` (no failure when `key` is absent).
    public func vdiRemoveFromSMConfig(_ vdi: String, key: String) throws(XenAPIError) {
        _ = try callWithSession("VDI.remove_from_sm_config", [.string(vdi), .string(key)])
    }

    /// `VDI.set_managed`.
    public func vdiSetManaged(_ vdi: String, _ managed: Bool) throws(XenAPIError) {
        _ = try callWithSession("VDI.set_managed", [.string(vdi), .boolean(managed)])
    }

    /// `VDI.set_snapshot_of`: records that `vdi` is a snapshot of `source` (a reference).
    public func vdiSetSnapshotOf(_ vdi: String, _ source: String) throws(XenAPIError) {
        _ = try callWithSession("VDI.set_snapshot_of", [.string(vdi), .string(source)])
    }

    /// `VDI.set_is_a_snapshot`.
    public func vdiSetIsASnapshot(_ vdi: String, _ isASnapshot: Bool) throws(XenAPIError) {
        _ = try callWithSession("VDI.set_is_a_snapshot", [.string(vdi), .boolean(isASnapshot)])
    }

    /// `VDI.set_snapshot_time` (`YYYYMMDDTHH:MM:SSZ`, see `XenAPIDateTime`).
    public func vdiSetSnapshotTime(_ vdi: String, _ dateTime: String) throws(XenAPIError) {
        _ = try callWithSession("VDI.set_snapshot_time", [.string(vdi), .dateTime(dateTime)])
    }

    /// `VDI.set_cbt_enabled`.
    public func vdiSetCBTEnabled(_ vdi: String, _ enabled: Bool) throws(XenAPIError) {
        _ = try callWithSession("VDI.set_cbt_enabled", [.string(vdi), .boolean(enabled)])
    }
}
