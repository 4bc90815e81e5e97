import Foundation
import Testing
@testable import SMCore

/// Every request document of the reference suite parses into a typed request, re-encodes byte
/// for byte, and bad requests map to fault 143 like the Python SM.
@Suite struct SMAPIRequestTests {
    static let names = Fixtures.requestNames

    /// Values substituted for the placeholders of the request documents.
    static let values: [String: String] = [
        "SR_UUID": "7d3a1c52-6e0b-4f8e-b6a9-2c41d0e95f13", "VDI_UUID": "c2f4e8a1-93b7-4d25-8e6f-0a1b2c3d4e5f",
        "VDI_LOCATION": "c2f4e8a1-93b7-4d25-8e6f-0a1b2c3d4e5f", "EXT_DEVICE": "/dev/disk/by-id/scsi-1",
        "NFS_SERVER": "192.0.2.10", "NFS_PATH": "/export/xenserver", "ISCSI_TARGET": "192.0.2.20",
        "ISCSI_PORT": "3260", "ISCSI_IQN": "iqn.2024-01.org.example:target", "SCSI_ID": "36001405c3a4b5d6e7f8091a2b3c4d5e6",
        "ISCSI_INITIATOR_IQN": "iqn.2024-01.org.example:host",
    ]

    static func substitute(_ text: String) -> String {
        values.reduce(text) { $0.replacingOccurrences(of: "{{\($1.key)}}", with: $1.value) }
    }

    @Test("the reference suite has 87 documents covering 29 commands × 3 SR types")
    func inventory() {
        #expect(Self.names.count == 87)
        let commands = Set(Self.names.map { Fixtures.split($0).command })
        #expect(commands.count == 29)
        #expect(commands.allSatisfy { SMAPICommand(rawValue: $0) != nil })
        #expect(SMAPICommand.allCases.count == 31)
        #expect(Set(SMAPICommand.allCases.map(\.rawValue)).subtracting(commands) == ["sr_content_type", "vdi_detach_from_config"])
    }

    @Test("every request document parses", arguments: names)
    func parses(_ name: String) throws {
        let (type, commandName) = Fixtures.split(name)
        let text = Self.substitute(try Fixtures.request(name))
        #expect(!text.contains("{{"))
        let request = try SMAPIRequest(arguments: [text])
        let command = try #require(SMAPICommand(rawValue: commandName))
        #expect(request.command == command)
        if command == .srGetDriverInfo {
            // No session, and an empty device_config (not even SRmaster).
            #expect(request.deviceConfig.isEmpty && request.sessionRef == nil && request.srUUID == nil)
            #expect(request.hostRef == "OpaqueRef:472f9ba6-2ea6-4784-8743-3247447b1ed6" && request.args.isEmpty)
            return
        }
        #expect(request.deviceConfig["SRmaster"] == "true")
        #expect(request.isMaster)
        switch type {
        case "ext": #expect(request.deviceConfig["device"] == "/dev/disk/by-id/scsi-1")
        case "nfs": #expect(request.deviceConfig["server"] == "192.0.2.10" && request.deviceConfig["serverpath"] == "/export/xenserver")
        default: #expect(request.deviceConfig["SCSIid"] == "36001405c3a4b5d6e7f8091a2b3c4d5e6" && request.deviceConfig["port"] == "3260")
        }

        if command == .vdiAttachFromConfig {
            #expect(request.hostRef == nil && request.sessionRef == nil && request.args.isEmpty)
            #expect(request.srUUID == Self.values["SR_UUID"] && request.vdiUUID == Self.values["VDI_UUID"])
            if type == "nfs" {
                #expect(request.srSMConfig == SMAPIStringMap())
                #expect(request.otherMembers == [XMLRPCMember("sr_other_config", .struct([]))])
            }
            if type == "lvmoiscsi" { #expect(request.deviceConfig["localIQN"] == "iqn.2024-01.org.example:host") }
            return
        }

        #expect(request.hostRef == "OpaqueRef:472f9ba6-2ea6-4784-8743-3247447b1ed6")
        #expect(request.otherMembers.isEmpty)
        #expect(request.localCacheSR == nil)
        let task = try #require(request.subtaskOf)
        if command == .vdiGenerateConfig {
            #expect(task.hasPrefix("OpaqueRef:"))
        } else {
            #expect(task.hasPrefix("DummyRef:|"))
        }
        #expect(request.sessionRef?.hasPrefix("OpaqueRef:") == true)
        if command == .srProbe {
            #expect(request.srSMConfig == SMAPIStringMap() && request.srRef == nil && request.srUUID == nil)
            return
        }
        #expect(request.srRef?.hasPrefix("OpaqueRef:") == true)
        #expect(request.srUUID == Self.values["SR_UUID"])
        switch command {
        case .srCreate:
            #expect(request.args == ["0"])
        case .vdiCreate:
            #expect(request.vdiType == "user" && request.vdiSMConfig == SMAPIStringMap() && request.vdiUUID == nil)
            #expect(request.args.count == 8 && request.args[0] == "10737418240" && request.args[5] == "19700101T00:00:00Z")
        case .vdiIntroduce:
            #expect(request.newUUID == Self.values["VDI_UUID"] && request.vdiLocation == Self.values["VDI_LOCATION"])
            #expect(request.vdiSMConfig == SMAPIStringMap())
        case .vdiSnapshot, .vdiClone:
            #expect(request.driverParams == SMAPIStringMap())
        case .vdiAttach, .vdiActivate:
            #expect(request.args.count == 1 && ["true", "false"].contains(request.args[0]))
        case .vdiResize, .vdiResizeOnline:
            #expect(request.args == ["21474836480"])
        case .vdiCompose, .vdiListChangedBlocks:
            #expect(request.args.count == 1 && request.args[0].hasPrefix("OpaqueRef:"))
        default:
            if !command.isSRCommand { #expect(request.args.isEmpty) }
        }
        if !command.isSRCommand && command != .vdiCreate && command != .vdiIntroduce {
            #expect(request.vdiUUID == Self.values["VDI_UUID"] && request.vdiLocation == Self.values["VDI_LOCATION"])
            #expect(request.vdiRef?.hasPrefix("OpaqueRef:") == true)
            #expect(request.vdiOnBoot == "persist" && request.vdiAllowCaching == "false")
            #expect(!request.allowsCaching && !request.resetsOnBoot)
        }
    }

    @Test("every request document re-encodes byte for byte in its producer's layout", arguments: names)
    func reencodes(_ name: String) throws {
        let text = try Fixtures.request(name)
        if name.hasSuffix("vdi_attach_from_config.xml") {
            // Written by Python's xmlrpc.client.dumps, surrounding whitespace stripped.
            let call = try XMLRPCDecoder().decodeMethodCall(text)
            #expect(XMLRPCEncoder(style: .python).encode(call) == text + "\n")
        } else {
            // Written by xapi (XMLRPC.To + Xml.to_string): one line, members in xapi's order.
            let request = try SMAPIRequest(parsing: text)
            #expect(request.encoded() == text)
            #expect(XMLRPCEncoder(style: .xapi).encode(try XMLRPCDecoder().decodeMethodCall(text)) == text)
        }
    }

    @Test("a request built in code encodes like xapi")
    func builtRequest() throws {
        let request = SMAPIRequest(command: .vdiResize, hostRef: "OpaqueRef:h", args: ["21474836480"],
                                   deviceConfig: ["SRmaster": "true", "device": "/dev/sdb"],
                                   sessionRef: "OpaqueRef:s", srRef: "OpaqueRef:r", srUUID: "u",
                                   vdiRef: "OpaqueRef:v", vdiLocation: "l", vdiUUID: "v",
                                   subtaskOf: "DummyRef:|x|VDI.resize", vdiOnBoot: "persist", vdiAllowCaching: "false")
        let expected = "<methodCall><methodName>vdi_resize</methodName><params><param><value><struct>"
            + "<member><name>host_ref</name><value>OpaqueRef:h</value></member>"
            + "<member><name>command</name><value>vdi_resize</value></member>"
            + "<member><name>args</name><value><array><data><value>21474836480</value></data></array></value></member>"
            + "<member><name>device_config</name><value><struct><member><name>SRmaster</name><value>true</value></member><member><name>device</name><value>/dev/sdb</value></member></struct></value></member>"
            + "<member><name>session_ref</name><value>OpaqueRef:s</value></member>"
            + "<member><name>sr_ref</name><value>OpaqueRef:r</value></member>"
            + "<member><name>sr_uuid</name><value>u</value></member>"
            + "<member><name>vdi_ref</name><value>OpaqueRef:v</value></member>"
            + "<member><name>vdi_location</name><value>l</value></member>"
            + "<member><name>vdi_uuid</name><value>v</value></member>"
            + "<member><name>subtask_of</name><value>DummyRef:|x|VDI.resize</value></member>"
            + "<member><name>vdi_on_boot</name><value>persist</value></member>"
            + "<member><name>vdi_allow_caching</name><value>false</value></member>"
            + "</struct></value></param></params></methodCall>"
        #expect(request.encoded() == expected)
        #expect(try SMAPIRequest(parsing: expected) == request)
    }

    /// The request error parsing `arguments` throws (nil when it parses).
    func requestError(_ arguments: [String]) -> SMAPIRequestError? {
        do {
            _ = try SMAPIRequest(arguments: arguments)
            return nil
        } catch {
            return error
        }
    }

    func call(_ method: String, _ members: String) -> String {
        "<methodCall><methodName>\(method)</methodName><params><param><value><struct>\(members)</struct></value></param></params></methodCall>"
    }

    let deviceConfig = "<member><name>device_config</name><value><struct/></value></member>"

    @Test("bad requests are refused with the reason, and all answer fault 143 BadRequest")
    func badRequests() {
        #expect(requestError([]) == .wrongArgumentCount(0))
        #expect(requestError(["a", "b"]) == .wrongArgumentCount(2))
        guard case .unparsable(.malformedXML) = requestError(["<methodCall"]) else {
            Issue.record("expected unparsable malformed XML")
            return
        }
        #expect(requestError(["<!DOCTYPE x><methodCall/>"]) == .unparsable(.doctypeForbidden))
        #expect(requestError(["<methodCall><methodName>sr_scan</methodName><params/></methodCall>"]) == .wrongParamCount(0))
        #expect(requestError(["<methodCall><methodName>sr_scan</methodName><params><param><value>x</value></param></params></methodCall>"]) ==
            .paramNotStruct(found: "string"))
        #expect(requestError([call("sr_scan", "")]) == .missingMember("device_config"))
        #expect(requestError([call("sr_scan", "<member><name>device_config</name><value>x</value></member>")]) ==
            .wrongMemberType("device_config", expected: "a struct of strings"))
        #expect(requestError([call("sr_scan", "<member><name>device_config</name><value><struct><member><name>a</name><value><i4>1</i4></value></member></struct></value></member>")]) ==
            .wrongMemberType("device_config", expected: "a struct of strings"))
        #expect(requestError([call("sr_scan", deviceConfig + "<member><name>args</name><value>x</value></member>")]) ==
            .wrongMemberType("args", expected: "an array of strings"))
        #expect(requestError([call("sr_scan", deviceConfig + "<member><name>args</name><value><array><data><value><i4>1</i4></value></data></array></value></member>")]) ==
            .wrongMemberType("args", expected: "an array of strings"))
        #expect(requestError([call("sr_scan", deviceConfig + "<member><name>sr_uuid</name><value><nil/></value></member>")]) ==
            .wrongMemberType("sr_uuid", expected: "a string"))
        #expect(requestError([call("vdi_revert", deviceConfig)]) == .unknownCommand("vdi_revert"))
        #expect(requestError([call("", deviceConfig)]) == .unknownCommand(""))
        #expect(requestError([call("sr_scan", deviceConfig)]) == nil)

        let error = SMAPIRequestError.unknownCommand("x").smapiError
        #expect(error.code == 143 && error.faultString == "Failed to parse the request")
        #expect(SMAPIResponse.text(SMAPIResponse.fault(error)) ==
            "<?xml version='1.0'?>\n<methodResponse>\n<fault>\n<value><struct>\n<member>\n<name>faultCode</name>\n<value><int>143</int></value>\n</member>\n<member>\n<name>faultString</name>\n<value><string>Failed to parse the request</string></value>\n</member>\n</struct></value>\n</fault>\n</methodResponse>\n")
        #expect(SMAPIRequestError.missingMember("device_config").description == "request is missing member device_config")
    }

    @Test("unknown members are kept, in order, and re-encoded after the known ones")
    func otherMembers() throws {
        let request = try SMAPIRequest(parsing: call("sr_scan", "<member><name>zzz</name><value><i4>1</i4></value></member>" + deviceConfig))
        #expect(request.otherMembers == [XMLRPCMember("zzz", .int(1))])
        #expect(request.xmlrpcValue.structMembers?.last == XMLRPCMember("zzz", .int(1)))
    }

    @Test("string maps keep order, replace in place and remove on nil")
    func stringMap() {
        var map: SMAPIStringMap = ["SRmaster": "true", "device": "/dev/a"]
        map["device"] = "/dev/b"
        map["extra"] = "1"
        #expect(map.keys == ["SRmaster", "device", "extra"])
        map["SRmaster"] = nil
        #expect(map.keys == ["device", "extra"])
        #expect(map.dictionary == ["device": "/dev/b", "extra": "1"])
        #expect(Array(map).map(\.key) == ["device", "extra"])
        #expect(SMAPIStringMap(.string("x")) == nil)
        #expect(SMAPIStringMap(map.xmlrpcValue) == map)
    }
}
