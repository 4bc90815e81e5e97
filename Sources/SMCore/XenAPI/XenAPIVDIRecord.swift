/// The fields of a `VDI.get_record` result a storage driver reads, plus the whole record.
public struct XenAPIVDIRecord: Sendable, Hashable {
    /// `uuid`.
    public var uuid: String
    /// `name_label`.
    public var nameLabel: String
    /// `name_description`.
    public var nameDescription: String
    /// `SR` (a reference).
    public var sr: String
    /// `type`.
    public var type: String
    /// `sharable`.
    public var sharable: Bool
    /// `read_only`.
    public var readOnly: Bool
    /// `other_config`.
    public var otherConfig: [String: String]
    /// `location`.
    public var location: String
    /// `xenstore_data`.
    public var xenstoreData: [String: String]
    /// `sm_config`.
    public var smConfig: [String: String]
    /// `managed`.
    public var managed: Bool
    /// `missing`.
    public var missing: Bool
    /// `virtual_size` in bytes.
    public var virtualSize: Int64
    /// `physical_utilisation` in bytes.
    public var physicalUtilisation: Int64
    /// `metadata_of_pool` (a reference).
    public var metadataOfPool: String
    /// `is_a_snapshot`.
    public var isASnapshot: Bool
    /// `snapshot_time` in wire form.
    public var snapshotTime: String
    /// `snapshot_of` (a reference).
    public var snapshotOf: String
    /// `cbt_enabled`.
    public var cbtEnabled: Bool
    /// Every member of the record as xapi sent it.
    public var fields: [XMLRPCMember]

    /// Reads a record struct; absent fields take xapi's defaults, mistyped ones are a protocol error.
    public init(_ value: XMLRPCValue) throws(XenAPIError) {
        guard let members = value.structMembers else {
            throw .protocolError("VDI record: expected a struct, found \(value.typeName)")
        }
        func field<T>(_ name: String, _ fallback: T,
                      _ read: (XMLRPCValue, String) throws(XenAPIError) -> T) throws(XenAPIError) -> T {
            guard let member = value[member: name] else { return fallback }
            return try read(member, "VDI.\(name)")
        }
        uuid = try field("uuid", "", XenAPIValue.string)
        nameLabel = try field("name_label", "", XenAPIValue.string)
        nameDescription = try field("name_description", "", XenAPIValue.string)
        sr = try field("SR", XenAPIClient.nullRef, XenAPIValue.string)
        type = try field("type", "user", XenAPIValue.string)
        sharable = try field("sharable", false, XenAPIValue.bool)
        readOnly = try field("read_only", false, XenAPIValue.bool)
        otherConfig = try field("other_config", [:], XenAPIValue.stringMap)
        location = try field("location", "", XenAPIValue.string)
        xenstoreData = try field("xenstore_data", [:], XenAPIValue.stringMap)
        smConfig = try field("sm_config", [:], XenAPIValue.stringMap)
        managed = try field("managed", true, XenAPIValue.bool)
        missing = try field("missing", false, XenAPIValue.bool)
        virtualSize = try field("virtual_size", 0, XenAPIValue.int64)
        physicalUtilisation = try field("physical_utilisation", 0, XenAPIValue.int64)
        metadataOfPool = try field("metadata_of_pool", XenAPIClient.nullRef, XenAPIValue.string)
        isASnapshot = try field("is_a_snapshot", false, XenAPIValue.bool)
        snapshotTime = try field("snapshot_time", XenAPIDateTime.epoch, XenAPIValue.dateTime)
        snapshotOf = try field("snapshot_of", XenAPIClient.nullRef, XenAPIValue.string)
        cbtEnabled = try field("cbt_enabled", false, XenAPIValue.bool)
        fields = members
    }
}
