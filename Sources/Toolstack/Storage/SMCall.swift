import XenAPIWire

/// One SMAPIv1 call as xapi builds it (`sm_exec`): the command, its positional arguments and
/// the struct fields naming the host, SR and VDI.
public struct SMCall: Sendable {
    /// The command (`sr_attach`, `vdi_snapshot`, …).
    public var command: String
    /// The positional arguments (all strings).
    public var args: [String] = []
    /// The PBD's device configuration (`SRmaster` is added when sent).
    public var deviceConfig: [String: String] = [:]
    /// The SR's uuid and reference.
    public var sr: (uuid: String, ref: String)?
    /// The VDI's uuid, reference, location and `sm_config`.
    public var vdi: (uuid: String, ref: String, location: String, smConfig: [String: String])?
    /// `vdi_sm_config` without a VDI (`vdi_create`).
    public var vdiSMConfig: [String: String]?
    /// Driver parameters (`vdi_snapshot`, `vdi_clone`).
    public var driverParams: [String: String]?
    /// The SR's `sm_config` (`sr_probe`).
    public var srSMConfig: [String: String]?
    /// `new_uuid` (`vdi_introduce`).
    public var newUUID: String?
    /// The task the call runs under.
    public var subtaskOf: String?

    /// A call of `command`.
    public init(_ command: String) { self.command = command }

    /// The methodCall document for the plugin's argv, with `session` and `host`.
    public func document(session: String?, host: String) -> String {
        func map(_ m: [String: String]) -> XMLRPCValue {
            .struct(m.keys.sorted().map { XMLRPCMember($0, .string(m[$0]!)) })
        }
        var config = deviceConfig
        config["SRmaster"] = "true"
        var members: [XMLRPCMember] = [
            XMLRPCMember("host_ref", .string(host)), XMLRPCMember("command", .string(command)),
            XMLRPCMember("args", .array(args.map { .string($0) })), XMLRPCMember("device_config", map(config)),
        ]
        if let session { members.append(XMLRPCMember("session_ref", .string(session))) }
        if let srSMConfig { members.append(XMLRPCMember("sr_sm_config", map(srSMConfig))) }
        if let sr {
            members.append(XMLRPCMember("sr_ref", .string(sr.ref)))
            members.append(XMLRPCMember("sr_uuid", .string(sr.uuid)))
        }
        if let vdi {
            members.append(XMLRPCMember("vdi_ref", .string(vdi.ref)))
            members.append(XMLRPCMember("vdi_location", .string(vdi.location)))
            members.append(XMLRPCMember("vdi_uuid", .string(vdi.uuid)))
            members.append(XMLRPCMember("vdi_sm_config", map(vdi.smConfig)))
        }
        if vdi == nil, let vdiSMConfig { members.append(XMLRPCMember("vdi_sm_config", map(vdiSMConfig))) }
        if let driverParams { members.append(XMLRPCMember("driver_params", map(driverParams))) }
        if let newUUID { members.append(XMLRPCMember("new_uuid", .string(newUUID))) }
        if let subtaskOf { members.append(XMLRPCMember("subtask_of", .string(subtaskOf))) }
        return XMLRPCEncoder(style: .xapi).encode(XMLRPCMethodCall(methodName: command, params: [.struct(members)]))
    }
}
