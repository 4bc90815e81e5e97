/// The VDI_INFO result of `vdi_create`, `vdi_snapshot`, `vdi_clone`, `vdi_resize` and
/// `vdi_introduce`: the struct `{location, uuid}` (both required by xapi).
public struct SMAPIVDIInfo: Sendable, Hashable {
    /// The VDI's uuid.
    public var uuid: String
    /// The VDI's location (for VHD SRs the uuid again).
    public var location: String

    /// A result naming VDI `uuid` at `location` (defaults to the uuid).
    public init(uuid: String, location: String? = nil) {
        self.uuid = uuid
        self.location = location ?? uuid
    }

    /// Reads the result the way xapi's `parse_vdi_info` does.
    public init(_ value: XMLRPCValue) throws(SMAPIResultError) {
        let reader = try SMAPIResultReader(value)
        self.init(uuid: try reader.string("uuid"), location: try reader.string("location"))
    }

    /// The struct, in the Python SM's order: `location`, then `uuid`.
    public var xmlrpcValue: XMLRPCValue {
        .struct([XMLRPCMember("location", .string(location)), XMLRPCMember("uuid", .string(uuid))])
    }
}
