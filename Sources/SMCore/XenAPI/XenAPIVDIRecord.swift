/// The fields of a `VDI.get_record` result a storage driver reads (those of `db_introduce`,
/// and `missing`), plus the whole record.
@dynamicMemberLookup
public struct XenAPIVDIRecord: Sendable, Hashable {
    /// The fields that `VDI.db_introduce` also takes (read as `record.nameLabel` and so on).
    public var introduction: XenAPIVDIIntroduction
    /// `missing`.
    public var missing: Bool
    /// Every member of the record as xapi sent it.
    public var fields: [XMLRPCMember]

    /// A field of the introduction part, by name.
    public subscript<T>(dynamicMember path: WritableKeyPath<XenAPIVDIIntroduction, T>) -> T {
        get { introduction[keyPath: path] }
        set { introduction[keyPath: path] = newValue }
    }

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
        let uuid = try field("uuid", "", XenAPIValue.string)
        introduction = XenAPIVDIIntroduction(
            uuid: uuid,
            nameLabel: try field("name_label", "", XenAPIValue.string),
            nameDescription: try field("name_description", "", XenAPIValue.string),
            sr: try field("SR", XenAPIClient.nullRef, XenAPIValue.string),
            type: try field("type", "user", XenAPIValue.string),
            sharable: try field("sharable", false, XenAPIValue.bool),
            readOnly: try field("read_only", false, XenAPIValue.bool),
            otherConfig: try field("other_config", [:], XenAPIValue.stringMap),
            location: try field("location", "", XenAPIValue.string),
            xenstoreData: try field("xenstore_data", [:], XenAPIValue.stringMap),
            smConfig: try field("sm_config", [:], XenAPIValue.stringMap),
            managed: try field("managed", true, XenAPIValue.bool),
            virtualSize: try field("virtual_size", 0, XenAPIValue.int64),
            physicalUtilisation: try field("physical_utilisation", 0, XenAPIValue.int64),
            metadataOfPool: try field("metadata_of_pool", XenAPIClient.nullRef, XenAPIValue.string),
            isASnapshot: try field("is_a_snapshot", false, XenAPIValue.bool),
            snapshotTime: try field("snapshot_time", XenAPIDateTime.epoch, XenAPIValue.dateTime),
            snapshotOf: try field("snapshot_of", XenAPIClient.nullRef, XenAPIValue.string),
            cbtEnabled: try field("cbt_enabled", false, XenAPIValue.bool))
        missing = try field("missing", false, XenAPIValue.bool)
        fields = members
    }
}
