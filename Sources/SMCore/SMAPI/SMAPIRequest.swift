import Foundation

/// A typed SMAPIv1 request: the struct xapi passes to a driver (`xmlrpc_of_call` in
/// `sm_exec.ml`), parsed from or encoded to the `<methodCall>` on the driver's command line.
public struct SMAPIRequest: Sendable, Hashable {
    /// The command (the call's `methodName`).
    public var command: SMAPICommand
    /// `host_ref`: the executing host's `OpaqueRef:`.
    public var hostRef: String?
    /// `args`: positional arguments, all strings (empty when absent).
    public var args: [String]
    /// `device_config`: the PBD's device configuration plus `SRmaster` (required).
    public var deviceConfig: SMAPIStringMap
    /// `session_ref`: the xapi session for callbacks (absent for `sr_get_driver_info`).
    public var sessionRef: String?
    /// `sr_sm_config`: the SR's sm-config (`sr_probe`).
    public var srSMConfig: SMAPIStringMap?
    /// `sr_ref`: the SR's `OpaqueRef:`.
    public var srRef: String?
    /// `vdi_type`: xapi's VDI type for `vdi_create` (`user`, `system`, `ha_statefile`, …).
    public var vdiType: String?
    /// `sr_uuid`: the SR's uuid.
    public var srUUID: String?
    /// `vdi_ref`: the VDI's `OpaqueRef:`.
    public var vdiRef: String?
    /// `vdi_location`: the driver-owned key of the VDI (the uuid for VHD SRs).
    public var vdiLocation: String?
    /// `vdi_uuid`: the VDI's uuid.
    public var vdiUUID: String?
    /// `driver_params`: options for `vdi_snapshot`/`vdi_clone` (`type`, `mirror`).
    public var driverParams: SMAPIStringMap?
    /// `vdi_sm_config`: initial sm-config for `vdi_create`/`vdi_introduce`.
    public var vdiSMConfig: SMAPIStringMap?
    /// `new_uuid`: the uuid to give the record `vdi_introduce` creates.
    public var newUUID: String?
    /// `subtask_of`: the task the call runs under.
    public var subtaskOf: String?
    /// `vdi_on_boot`: `persist` or `reset`.
    public var vdiOnBoot: String?
    /// `vdi_allow_caching`: `true` or `false`.
    public var vdiAllowCaching: String?
    /// `local_cache_sr`: the uuid of the host's local cache SR, when it has one.
    public var localCacheSR: String?
    /// Members not listed above, in document order (e.g. `sr_other_config` in `vdi_attach_from_config`).
    public var otherMembers: [XMLRPCMember]

    /// The member names xapi sends, in the order it sends them.
    public static let memberOrder: [String] = [
        "host_ref", "command", "args", "device_config", "session_ref", "sr_sm_config", "sr_ref",
        "vdi_type", "sr_uuid", "vdi_ref", "vdi_location", "vdi_uuid", "driver_params",
        "vdi_sm_config", "new_uuid", "subtask_of", "vdi_on_boot", "vdi_allow_caching", "local_cache_sr",
    ]

    /// A request for `command` with the given members (absent ones nil).
    public init(command: SMAPICommand, hostRef: String? = nil, args: [String] = [],
                deviceConfig: SMAPIStringMap = SMAPIStringMap(), sessionRef: String? = nil,
                srSMConfig: SMAPIStringMap? = nil, srRef: String? = nil, vdiType: String? = nil,
                srUUID: String? = nil, vdiRef: String? = nil, vdiLocation: String? = nil,
                vdiUUID: String? = nil, driverParams: SMAPIStringMap? = nil,
                vdiSMConfig: SMAPIStringMap? = nil, newUUID: String? = nil, subtaskOf: String? = nil,
                vdiOnBoot: String? = nil, vdiAllowCaching: String? = nil, localCacheSR: String? = nil,
                otherMembers: [XMLRPCMember] = []) {
        self.command = command
        self.hostRef = hostRef
        self.args = args
        self.deviceConfig = deviceConfig
        self.sessionRef = sessionRef
        self.srSMConfig = srSMConfig
        self.srRef = srRef
        self.vdiType = vdiType
        self.srUUID = srUUID
        self.vdiRef = vdiRef
        self.vdiLocation = vdiLocation
        self.vdiUUID = vdiUUID
        self.driverParams = driverParams
        self.vdiSMConfig = vdiSMConfig
        self.newUUID = newUUID
        self.subtaskOf = subtaskOf
        self.vdiOnBoot = vdiOnBoot
        self.vdiAllowCaching = vdiAllowCaching
        self.localCacheSR = localCacheSR
        self.otherMembers = otherMembers
    }

    /// Parses a driver's command line (arguments after the program name): exactly one XML-RPC document.
    public init(arguments: [String], decoder: XMLRPCDecoder = XMLRPCDecoder()) throws(SMAPIRequestError) {
        guard arguments.count == 1 else { throw .wrongArgumentCount(arguments.count) }
        try self.init(parsing: arguments[0], decoder: decoder)
    }

    /// Parses the text of a `<methodCall>` document.
    public init(parsing text: String, decoder: XMLRPCDecoder = XMLRPCDecoder()) throws(SMAPIRequestError) {
        let call: XMLRPCMethodCall
        do {
            call = try decoder.decodeMethodCall(text)
        } catch {
            throw .unparsable(error)
        }
        try self.init(methodCall: call)
    }

    /// Reads the request from a decoded method call: one struct with a `device_config` struct
    /// of strings, string members where strings belong, and a known command as method name.
    public init(methodCall: XMLRPCMethodCall) throws(SMAPIRequestError) {
        guard methodCall.params.count == 1 else { throw .wrongParamCount(methodCall.params.count) }
        guard let members = methodCall.params[0].structMembers else {
            throw .paramNotStruct(found: methodCall.params[0].typeName)
        }
        var fields: [String: XMLRPCValue] = [:]
        var others: [XMLRPCMember] = []
        let known = Set(Self.memberOrder)
        for member in members {
            if known.contains(member.name) {
                fields[member.name] = member.value
            } else {
                others.append(member)
            }
        }
        func string(_ name: String) throws(SMAPIRequestError) -> String? {
            guard let value = fields[name] else { return nil }
            guard let text = value.stringValue else { throw .wrongMemberType(name, expected: "a string") }
            return text
        }
        func map(_ name: String) throws(SMAPIRequestError) -> SMAPIStringMap? {
            guard let value = fields[name] else { return nil }
            guard let map = SMAPIStringMap(value) else { throw .wrongMemberType(name, expected: "a struct of strings") }
            return map
        }
        guard let deviceConfig = try map("device_config") else { throw .missingMember("device_config") }
        var args: [String] = []
        if let value = fields["args"] {
            guard let elements = value.arrayValue else { throw .wrongMemberType("args", expected: "an array of strings") }
            for element in elements {
                guard let text = element.stringValue else { throw .wrongMemberType("args", expected: "an array of strings") }
                args.append(text)
            }
        }
        _ = try string("command")
        guard let command = SMAPICommand(rawValue: methodCall.methodName) else {
            throw .unknownCommand(methodCall.methodName)
        }
        self.init(command: command, hostRef: try string("host_ref"), args: args, deviceConfig: deviceConfig,
                  sessionRef: try string("session_ref"), srSMConfig: try map("sr_sm_config"),
                  srRef: try string("sr_ref"), vdiType: try string("vdi_type"), srUUID: try string("sr_uuid"),
                  vdiRef: try string("vdi_ref"), vdiLocation: try string("vdi_location"),
                  vdiUUID: try string("vdi_uuid"), driverParams: try map("driver_params"),
                  vdiSMConfig: try map("vdi_sm_config"), newUUID: try string("new_uuid"),
                  subtaskOf: try string("subtask_of"), vdiOnBoot: try string("vdi_on_boot"),
                  vdiAllowCaching: try string("vdi_allow_caching"), localCacheSR: try string("local_cache_sr"),
                  otherMembers: others)
    }

    /// `sr_other_config`, which `vdi_generate_config` of network SRs puts in the
    /// `vdi_attach_from_config` document it writes (nil when absent or not a struct of strings).
    public var srOtherConfig: SMAPIStringMap? {
        otherMembers.first { $0.name == "sr_other_config" }.flatMap { SMAPIStringMap($0.value) }
    }

    /// True when `device_config:SRmaster` is `true` (the call runs on the SR master).
    public var isMaster: Bool { deviceConfig["SRmaster"] == "true" }

    /// True when `vdi_allow_caching` is `true`.
    public var allowsCaching: Bool { vdiAllowCaching == "true" }

    /// True when `vdi_on_boot` is `reset`.
    public var resetsOnBoot: Bool { vdiOnBoot == "reset" }

    /// The request struct, members in xapi's order (`command` and `args` always present),
    /// followed by `otherMembers`.
    public var xmlrpcValue: XMLRPCValue {
        var members: [XMLRPCMember] = []
        func add(_ name: String, _ value: XMLRPCValue?) {
            if let value { members.append(XMLRPCMember(name, value)) }
        }
        add("host_ref", hostRef.map(XMLRPCValue.string))
        add("command", .string(command.rawValue))
        add("args", .array(args.map(XMLRPCValue.string)))
        add("device_config", deviceConfig.xmlrpcValue)
        add("session_ref", sessionRef.map(XMLRPCValue.string))
        add("sr_sm_config", srSMConfig?.xmlrpcValue)
        add("sr_ref", srRef.map(XMLRPCValue.string))
        add("vdi_type", vdiType.map(XMLRPCValue.string))
        add("sr_uuid", srUUID.map(XMLRPCValue.string))
        add("vdi_ref", vdiRef.map(XMLRPCValue.string))
        add("vdi_location", vdiLocation.map(XMLRPCValue.string))
        add("vdi_uuid", vdiUUID.map(XMLRPCValue.string))
        add("driver_params", driverParams?.xmlrpcValue)
        add("vdi_sm_config", vdiSMConfig?.xmlrpcValue)
        add("new_uuid", newUUID.map(XMLRPCValue.string))
        add("subtask_of", subtaskOf.map(XMLRPCValue.string))
        add("vdi_on_boot", vdiOnBoot.map(XMLRPCValue.string))
        add("vdi_allow_caching", vdiAllowCaching.map(XMLRPCValue.string))
        add("local_cache_sr", localCacheSR.map(XMLRPCValue.string))
        return .struct(members + otherMembers)
    }

    /// The request as a method call of `command` with the request struct as its one parameter.
    public var methodCall: XMLRPCMethodCall {
        XMLRPCMethodCall(methodName: command.rawValue, params: [xmlrpcValue])
    }

    /// The document as xapi puts it on the driver's command line (one line, no declaration).
    public func encoded(style: XMLRPCStyle = .xapi) -> String {
        XMLRPCEncoder(style: style).encode(methodCall)
    }
}
