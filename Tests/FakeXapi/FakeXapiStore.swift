import Foundation
import SMCore

/// A XenAPI failure the fake answers with (`ErrorDescription`).
struct FakeXapiFailure: Error, Sendable {
    var description: [String]
    init(_ description: [String]) { self.description = description }
}

/// The fake xapi's database and the XenAPI methods it implements, answered as xapi would
/// (session check, parameter counts and types, `HANDLE_INVALID`, `UUID_INVALID`, `MAP_DUPLICATE_KEY`).
/// Not thread-safe on its own: `FakeXapi` holds it under a lock.
struct FakeXapiStore: Sendable {
    var sessions: Set<String> = []
    var acceptAnyOpaqueSession = false
    var credentials: (username: String, password: String)? = nil
    var srs: [String: FakeSR] = [:]
    var vdis: [String: FakeVDI] = [:]
    var messages: [FakeMessage] = []
    /// Host refs and their `other_config`.
    var hosts: [String: [String: String]] = [:]
    /// PBD refs and their records.
    var pbds: [String: FakePBD] = [:]
    /// The pool master's host ref (`pool.get_master`).
    var poolMaster = ""
    /// Secret refs: their uuid and value.
    var secrets: [String: (uuid: String, value: String)] = [:]
    var calls: [String] = []
    var requests: [FakeXapiRequest] = []

    /// Whether `ref` is `OpaqueRef:` followed by a uuid.
    static func isOpaqueRef(_ ref: String) -> Bool {
        ref.hasPrefix("OpaqueRef:") && UUID(uuidString: String(ref.dropFirst("OpaqueRef:".count))) != nil
    }

    /// The pool's reference.
    static let poolRef = "OpaqueRef:00000000-0000-4000-8000-00000000b001"

    /// A fresh opaque reference.
    static func newRef() -> String { "OpaqueRef:" + UUID().uuidString.lowercased() }

    /// Adds an SR record and returns its reference.
    mutating func addSR(ref: String? = nil, uuid: String, nameLabel: String, type: String, smConfig: [String: String],
                        otherConfig: [String: String]) -> String {
        let ref = ref ?? Self.newRef()
        srs[ref] = FakeSR(ref: ref, uuid: uuid, nameLabel: nameLabel, nameDescription: "", type: type,
                          contentType: "user", shared: false, physicalSize: "0", physicalUtilisation: "0",
                          virtualAllocation: "0", smConfig: smConfig, otherConfig: otherConfig)
        return ref
    }

    /// Answers one call: the `Value` of a success, or the `ErrorDescription` of a failure.
    mutating func handle(_ call: XMLRPCMethodCall) -> Result<XMLRPCValue, FakeXapiFailure> {
        calls.append(call.methodName)
        do {
            return .success(try dispatch(call.methodName, call.params))
        } catch let failure as FakeXapiFailure {
            return .failure(failure)
        } catch {
            return .failure(FakeXapiFailure(["INTERNAL_ERROR", "\(error)"]))
        }
    }

    // MARK: - Dispatch

    private mutating func dispatch(_ method: String, _ params: [XMLRPCValue]) throws -> XMLRPCValue {
        let dot = method.firstIndex(of: ".")
        let className = dot.map { String(method[..<$0]) } ?? ""
        let message = dot.map { String(method[method.index(after: $0)...]) } ?? method
        if className == "session" && message == "login_with_password" { return try login(method, params) }
        guard Self.isKnown(className, message) else { throw FakeXapiFailure(["MESSAGE_METHOD_UNKNOWN", method]) }
        let args = Args(method: method, params: params)
        let session = params.first?.stringValue ?? ""
        guard sessions.contains(session) || (acceptAnyOpaqueSession && Self.isOpaqueRef(session)) else {
            throw FakeXapiFailure(["SESSION_INVALID", session])
        }
        switch className {
        case "session":
            try args.count(0)
            sessions.remove(session)
            return .string("")
        case "VDI": return try vdiMethod(message, args)
        case "SR": return try srMethod(message, args)
        case "message": return try messageCreate(args)
        case "host":
            if message == "call_plugin" {
                // The session is good; FakeXapi runs the plugin outside its lock.
                try args.count(4)
                return .string("")
            }
            return try hostMethod(message, args)
        case "PBD": return try pbdMethod(message, args)
        case "secret": return try secretMethod(message, args)
        case "pool":
            if message == "get_all" {
                try args.count(0)
                return .array([.string(Self.poolRef)])
            }
            try args.count(1)
            guard try args.string(0, "self") == Self.poolRef else { throw FakeXapiFailure(["HANDLE_INVALID", "pool", try args.string(0, "self")]) }
            return .string(poolMaster)
        default: throw FakeXapiFailure(["MESSAGE_METHOD_UNKNOWN", method])
        }
    }

    /// The methods the fake implements (everything else is `MESSAGE_METHOD_UNKNOWN`).
    private static func isKnown(_ className: String, _ message: String) -> Bool {
        switch className {
        case "session": return message == "logout"
        case "VDI":
            return ["db_introduce", "db_forget", "get_by_uuid", "get_record", "get_all", "get_all_records_where"].contains(message)
                || vdiSetters[message] != nil || vdiMapOps[message] != nil
                || (message.hasPrefix("get_") && vdiGetterFields.contains(String(message.dropFirst(4))))
        case "SR":
            return ["get_by_uuid", "get_record", "get_VDIs", "get_all", "get_PBDs"].contains(message)
                || srSetters[message] != nil || srMapOps[message] != nil
                || (message.hasPrefix("get_") && srGetterFields.contains(String(message.dropFirst(4))))
        case "message": return message == "create"
        case "host": return ["call_plugin", "get_other_config", "add_to_other_config", "remove_from_other_config"].contains(message)
        case "PBD": return ["get_host", "get_SR", "get_other_config", "add_to_other_config", "remove_from_other_config"].contains(message)
        case "secret": return ["get_by_uuid", "get_value"].contains(message)
        case "pool": return ["get_all", "get_master"].contains(message)
        default: return false
        }
    }

    private mutating func login(_ method: String, _ params: [XMLRPCValue]) throws -> XMLRPCValue {
        guard (2...4).contains(params.count) else {
            throw FakeXapiFailure(["MESSAGE_PARAMETER_COUNT_MISMATCH", method, "4", String(params.count)])
        }
        let username = params[0].stringValue ?? ""
        let password = params[1].stringValue ?? ""
        if let credentials, credentials.username != username || credentials.password != password {
            throw FakeXapiFailure(["SESSION_AUTHENTICATION_FAILED", username, "Authentication failure"])
        }
        let ref = Self.newRef()
        sessions.insert(ref)
        return .string(ref)
    }

    // MARK: - VDI

    private static let vdiGetterFields: Set<String> = [
        "uuid", "name_label", "name_description", "SR", "virtual_size", "physical_utilisation", "type",
        "sharable", "read_only", "other_config", "location", "managed", "missing", "xenstore_data",
        "sm_config", "is_a_snapshot", "snapshot_of", "snapshot_time", "metadata_of_pool", "cbt_enabled",
    ]
    private enum Kind { case string, bool, int64, map, dateTime }
    private static let vdiSetters: [String: Kind] = [
        "set_virtual_size": .int64, "set_physical_utilisation": .int64, "set_read_only": .bool,
        "set_sm_config": .map, "set_other_config": .map, "set_xenstore_data": .map, "set_managed": .bool,
        "set_snapshot_of": .string, "set_is_a_snapshot": .bool, "set_snapshot_time": .dateTime,
        "set_cbt_enabled": .bool, "set_name_label": .string, "set_name_description": .string,
        "set_missing": .bool, "set_metadata_of_pool": .string, "set_sharable": .bool,
    ]
    private static let vdiMapOps: [String: String] = [
        "add_to_sm_config": "sm_config", "remove_from_sm_config": "sm_config",
        "add_to_other_config": "other_config", "remove_from_other_config": "other_config",
        "add_to_xenstore_data": "xenstore_data", "remove_from_xenstore_data": "xenstore_data",
    ]

    private mutating func vdiMethod(_ message: String, _ args: Args) throws -> XMLRPCValue {
        switch message {
        case "db_introduce": return try dbIntroduce(args)
        case "db_forget":
            try args.count(1)
            let ref = try vdiRef(args, 0)
            vdis[ref] = nil
            return .string("")
        case "get_by_uuid":
            try args.count(1)
            let uuid = try args.string(0, "uuid")
            guard let vdi = vdis.values.first(where: { $0.uuid == uuid }) else {
                throw FakeXapiFailure(["UUID_INVALID", "VDI", uuid])
            }
            return .string(vdi.ref)
        case "get_record":
            try args.count(1)
            return vdis[try vdiRef(args, 0)]!.xmlrpc
        case "get_all":
            try args.count(0)
            return .array(vdis.keys.sorted().map { .string($0) })
        case "get_all_records_where":
            try args.count(1)
            let conditions = try Self.conditions(try args.string(0, "expr"))
            let matching = vdis.values.filter { vdi in
                let record = vdi.xmlrpc
                return conditions.allSatisfy { record[member: $0.field] == .string($0.value) }
            }
            return .struct(matching.sorted { $0.ref < $1.ref }.map { XMLRPCMember($0.ref, $0.xmlrpc) })
        default: break
        }
        if let field = Self.vdiMapOps[message] {
            let adding = message.hasPrefix("add_to_")
            try args.count(adding ? 3 : 2)
            let ref = try vdiRef(args, 0)
            let key = try args.string(1, "key")
            var record = vdis[ref]!
            let path: WritableKeyPath<FakeVDI, [String: String]> =
                field == "sm_config" ? \.smConfig : field == "other_config" ? \.otherConfig : \.xenstoreData
            if adding {
                guard record[keyPath: path][key] == nil else {
                    throw FakeXapiFailure(["MAP_DUPLICATE_KEY", "VDI", field, ref, key])
                }
                record[keyPath: path][key] = try args.string(2, "value")
            } else {
                record[keyPath: path][key] = nil
            }
            vdis[ref] = record
            return .string("")
        }
        if let kind = Self.vdiSetters[message] {
            try args.count(2)
            let ref = try vdiRef(args, 0)
            var record = vdis[ref]!
            let name = String(message.dropFirst(4))
            switch (name, kind) {
            case ("virtual_size", _): record.virtualSize = try args.int64(1, name)
            case ("physical_utilisation", _): record.physicalUtilisation = try args.int64(1, name)
            case ("read_only", _): record.readOnly = try args.bool(1, name)
            case ("sm_config", _): record.smConfig = try args.map(1, name)
            case ("other_config", _): record.otherConfig = try args.map(1, name)
            case ("xenstore_data", _): record.xenstoreData = try args.map(1, name)
            case ("managed", _): record.managed = try args.bool(1, name)
            case ("snapshot_of", _): record.snapshotOf = try args.string(1, name)
            case ("is_a_snapshot", _): record.isASnapshot = try args.bool(1, name)
            case ("snapshot_time", _): record.snapshotTime = try args.dateTime(1, name)
            case ("cbt_enabled", _): record.cbtEnabled = try args.bool(1, name)
            case ("name_label", _): record.nameLabel = try args.string(1, name)
            case ("name_description", _): record.nameDescription = try args.string(1, name)
            case ("missing", _): record.missing = try args.bool(1, name)
            case ("metadata_of_pool", _): record.metadataOfPool = try args.string(1, name)
            case ("sharable", _): record.sharable = try args.bool(1, name)
            default: throw FakeXapiFailure(["MESSAGE_METHOD_UNKNOWN", args.method])
            }
            vdis[ref] = record
            return .string("")
        }
        // get_<field>
        try args.count(1)
        let record = vdis[try vdiRef(args, 0)]!.xmlrpc
        return record[member: String(message.dropFirst(4))]!
    }

    /// The `field "<name>" = "<value>"` comparisons of a query joined by `and` (`true` matches everything).
    private static func conditions(_ expression: String) throws -> [(field: String, value: String)] {
        let trimmed = expression.trimmingCharacters(in: .whitespaces)
        if trimmed == "true" || trimmed.isEmpty { return [] }
        return try trimmed.components(separatedBy: " and ").map { clause in
            let parts = clause.trimmingCharacters(in: .whitespaces).components(separatedBy: "\"")
            // field "NAME" = "VALUE" splits into: `field `, NAME, ` = `, VALUE, ``
            guard parts.count == 5, parts[0].trimmingCharacters(in: .whitespaces) == "field",
                  parts[2].trimmingCharacters(in: .whitespaces) == "=" else {
                throw FakeXapiFailure(["INTERNAL_ERROR", "unsupported query: \(expression)"])
            }
            return (parts[1], parts[3])
        }
    }

    /// `VDI.db_introduce`: 19 parameters after the session (the older 11-parameter form fills defaults).
    private mutating func dbIntroduce(_ args: Args) throws -> XMLRPCValue {
        guard (11...19).contains(args.values.count) else {
            throw FakeXapiFailure(["MESSAGE_PARAMETER_COUNT_MISMATCH", args.method, "20", String(args.values.count + 1)])
        }
        let count = args.values.count
        let uuid = try args.string(0, "uuid")
        let sr = try args.string(3, "SR")
        guard srs[sr] != nil else { throw FakeXapiFailure(["HANDLE_INVALID", "SR", sr]) }
        guard !vdis.values.contains(where: { $0.uuid == uuid }) else {
            throw FakeXapiFailure(["INTERNAL_ERROR", "Db_exn.Uniqueness_constraint_violation(\"VDI\", \"uuid\", \"\(uuid)\")"])
        }
        let ref = Self.newRef()
        vdis[ref] = FakeVDI(
            ref: ref, uuid: uuid,
            nameLabel: try args.string(1, "name_label"),
            nameDescription: try args.string(2, "name_description"),
            sr: sr,
            type: try args.enumeration(4, "type", ["user", "system", "suspend", "crashdump", "ha_statefile", "metadata",
                                                   "redo_log", "rrd", "pvs_cache", "cbt_metadata", "ephemeral"]),
            sharable: try args.bool(5, "sharable"),
            readOnly: try args.bool(6, "read_only"),
            otherConfig: try args.map(7, "other_config"),
            location: try args.string(8, "location"),
            xenstoreData: try args.map(9, "xenstore_data"),
            smConfig: try args.map(10, "sm_config"),
            managed: count > 11 ? try args.bool(11, "managed") : true,
            virtualSize: count > 12 ? try args.int64(12, "virtual_size") : "0",
            physicalUtilisation: count > 13 ? try args.int64(13, "physical_utilisation") : "0",
            metadataOfPool: count > 14 ? try args.string(14, "metadata_of_pool") : "",
            isASnapshot: count > 15 ? try args.bool(15, "is_a_snapshot") : false,
            snapshotTime: count > 16 ? try args.dateTime(16, "snapshot_time") : XenAPIDateTime.epoch,
            snapshotOf: count > 17 ? try args.string(17, "snapshot_of") : "",
            cbtEnabled: count > 18 ? try args.bool(18, "cbt_enabled") : false)
        return .string(ref)
    }

    private func vdiRef(_ args: Args, _ index: Int) throws -> String {
        let ref = try args.string(index, "self")
        guard vdis[ref] != nil else { throw FakeXapiFailure(["HANDLE_INVALID", "VDI", ref]) }
        return ref
    }

    // MARK: - SR

    private static let srGetterFields: Set<String> = [
        "uuid", "name_label", "name_description", "physical_size", "physical_utilisation",
        "virtual_allocation", "type", "content_type", "shared", "sm_config", "other_config",
    ]
    private static let srSetters: [String: Kind] = [
        "set_virtual_allocation": .int64, "set_physical_size": .int64, "set_physical_utilisation": .int64,
        "set_sm_config": .map, "set_other_config": .map, "set_name_label": .string,
        "set_name_description": .string, "set_shared": .bool,
    ]
    private static let srMapOps: [String: String] = [
        "add_to_sm_config": "sm_config", "remove_from_sm_config": "sm_config",
        "add_to_other_config": "other_config", "remove_from_other_config": "other_config",
    ]

    private func vdiRefs(of sr: String) -> [String] {
        vdis.values.filter { $0.sr == sr }.map(\.ref).sorted()
    }

    private mutating func srMethod(_ message: String, _ args: Args) throws -> XMLRPCValue {
        switch message {
        case "get_by_uuid":
            try args.count(1)
            let uuid = try args.string(0, "uuid")
            guard let sr = srs.values.first(where: { $0.uuid == uuid }) else {
                throw FakeXapiFailure(["UUID_INVALID", "SR", uuid])
            }
            return .string(sr.ref)
        case "get_record":
            try args.count(1)
            let ref = try srRef(args, 0)
            return srs[ref]!.xmlrpc(vdis: vdiRefs(of: ref))
        case "get_VDIs":
            try args.count(1)
            return .array(vdiRefs(of: try srRef(args, 0)).map { .string($0) })
        case "get_all":
            try args.count(0)
            return .array(srs.keys.sorted().map { .string($0) })
        case "get_PBDs":
            try args.count(1)
            let ref = try srRef(args, 0)
            return .array(pbds.filter { $0.value.sr == ref }.keys.sorted().map { .string($0) })
        default: break
        }
        if let field = Self.srMapOps[message] {
            let adding = message.hasPrefix("add_to_")
            try args.count(adding ? 3 : 2)
            let ref = try srRef(args, 0)
            let key = try args.string(1, "key")
            var record = srs[ref]!
            let path: WritableKeyPath<FakeSR, [String: String]> = field == "sm_config" ? \.smConfig : \.otherConfig
            if adding {
                guard record[keyPath: path][key] == nil else {
                    throw FakeXapiFailure(["MAP_DUPLICATE_KEY", "SR", field, ref, key])
                }
                record[keyPath: path][key] = try args.string(2, "value")
            } else {
                record[keyPath: path][key] = nil
            }
            srs[ref] = record
            return .string("")
        }
        if Self.srSetters[message] != nil {
            try args.count(2)
            let ref = try srRef(args, 0)
            var record = srs[ref]!
            let name = String(message.dropFirst(4))
            switch name {
            case "virtual_allocation": record.virtualAllocation = try args.int64(1, name)
            case "physical_size": record.physicalSize = try args.int64(1, name)
            case "physical_utilisation": record.physicalUtilisation = try args.int64(1, name)
            case "sm_config": record.smConfig = try args.map(1, name)
            case "other_config": record.otherConfig = try args.map(1, name)
            case "name_label": record.nameLabel = try args.string(1, name)
            case "name_description": record.nameDescription = try args.string(1, name)
            case "shared": record.shared = try args.bool(1, name)
            default: throw FakeXapiFailure(["MESSAGE_METHOD_UNKNOWN", args.method])
            }
            srs[ref] = record
            return .string("")
        }
        try args.count(1)
        let ref = try srRef(args, 0)
        return srs[ref]!.xmlrpc(vdis: vdiRefs(of: ref))[member: String(message.dropFirst(4))]!
    }

    private func srRef(_ args: Args, _ index: Int) throws -> String {
        let ref = try args.string(index, "self")
        guard srs[ref] != nil else { throw FakeXapiFailure(["HANDLE_INVALID", "SR", ref]) }
        return ref
    }

    // MARK: - host, PBD, secret

    /// `other_config` getter and map operations of a host.
    private mutating func hostMethod(_ message: String, _ args: Args) throws -> XMLRPCValue {
        let ref = try args.string(0, "self")
        guard var other = hosts[ref] else { throw FakeXapiFailure(["HANDLE_INVALID", "host", ref]) }
        switch message {
        case "get_other_config":
            try args.count(1)
            return XenAPIValue.map(other)
        default:
            try Self.mapOperation(message, args, &other, className: "host", field: "other_config", ref: ref)
            hosts[ref] = other
            return .string("")
        }
    }

    /// Getters and `other_config` map operations of a PBD.
    private mutating func pbdMethod(_ message: String, _ args: Args) throws -> XMLRPCValue {
        let ref = try args.string(0, "self")
        guard var pbd = pbds[ref] else { throw FakeXapiFailure(["HANDLE_INVALID", "PBD", ref]) }
        switch message {
        case "get_host":
            try args.count(1)
            return .string(pbd.host)
        case "get_SR":
            try args.count(1)
            return .string(pbd.sr)
        case "get_other_config":
            try args.count(1)
            return XenAPIValue.map(pbd.otherConfig)
        default:
            try Self.mapOperation(message, args, &pbd.otherConfig, className: "PBD", field: "other_config", ref: ref)
            pbds[ref] = pbd
            return .string("")
        }
    }

    /// `secret.get_by_uuid` and `secret.get_value`.
    private func secretMethod(_ message: String, _ args: Args) throws -> XMLRPCValue {
        try args.count(1)
        let key = try args.string(0, message == "get_by_uuid" ? "uuid" : "self")
        if message == "get_by_uuid" {
            guard let ref = secrets.first(where: { $0.value.uuid == key })?.key else { throw FakeXapiFailure(["UUID_INVALID", "secret", key]) }
            return .string(ref)
        }
        guard let secret = secrets[key] else { throw FakeXapiFailure(["HANDLE_INVALID", "secret", key]) }
        return .string(secret.value)
    }

    /// `add_to_<field>` (`MAP_DUPLICATE_KEY` when present) and `remove_from_<field>` on `map`.
    private static func mapOperation(_ message: String, _ args: Args, _ map: inout [String: String], className: String,
                                     field: String, ref: String) throws {
        if message.hasPrefix("add_to_") {
            try args.count(3)
            let key = try args.string(1, "key")
            guard map[key] == nil else { throw FakeXapiFailure(["MAP_DUPLICATE_KEY", className, field, ref, key]) }
            map[key] = try args.string(2, "value")
        } else {
            try args.count(2)
            map[try args.string(1, "key")] = nil
        }
    }

    // MARK: - message

    private mutating func messageCreate(_ args: Args) throws -> XMLRPCValue {
        try args.count(5)
        let ref = Self.newRef()
        messages.append(FakeMessage(
            ref: ref, name: try args.string(0, "name"), priority: try args.int64(1, "priority"),
            objectClass: try args.enumeration(2, "cls", ["VM", "Host", "SR", "Pool", "VMPP", "VMSS", "PVS_proxy",
                                                         "VDI", "Certificate"]),
            objectUUID: try args.string(3, "obj_uuid"), body: try args.string(4, "body")))
        return .string(ref)
    }
}

/// The parameters after the session, read with xapi's type checks (`FIELD_TYPE_ERROR`).
private struct Args {
    let method: String
    let values: [XMLRPCValue]

    init(method: String, params: [XMLRPCValue]) {
        self.method = method
        self.values = Array(params.dropFirst())
    }

    func count(_ expected: Int) throws {
        guard values.count == expected else {
            throw FakeXapiFailure(["MESSAGE_PARAMETER_COUNT_MISMATCH", method, String(expected + 1), String(values.count + 1)])
        }
    }

    func string(_ index: Int, _ name: String) throws -> String {
        guard let text = values[index].stringValue else { throw FakeXapiFailure(["FIELD_TYPE_ERROR", name]) }
        return text
    }

    func bool(_ index: Int, _ name: String) throws -> Bool {
        guard let flag = values[index].boolValue else { throw FakeXapiFailure(["FIELD_TYPE_ERROR", name]) }
        return flag
    }

    /// An int64: xapi takes a decimal string (or an `<int>`) and keeps it as a number; stored as its string.
    func int64(_ index: Int, _ name: String) throws -> String {
        switch values[index] {
        case .string(let text):
            guard let number = Int64(text) else { throw FakeXapiFailure(["FIELD_TYPE_ERROR", name]) }
            return String(number)
        case .int(let number):
            return String(number)
        default:
            throw FakeXapiFailure(["FIELD_TYPE_ERROR", name])
        }
    }

    func map(_ index: Int, _ name: String) throws -> [String: String] {
        guard let members = values[index].structMembers else { throw FakeXapiFailure(["FIELD_TYPE_ERROR", name]) }
        var map: [String: String] = [:]
        for member in members {
            guard let text = member.value.stringValue else { throw FakeXapiFailure(["FIELD_TYPE_ERROR", name]) }
            map[member.name] = text
        }
        return map
    }

    func dateTime(_ index: Int, _ name: String) throws -> String {
        switch values[index] {
        case .dateTime(let text), .string(let text): return text
        default: throw FakeXapiFailure(["FIELD_TYPE_ERROR", name])
        }
    }

    func enumeration(_ index: Int, _ name: String, _ allowed: [String]) throws -> String {
        let text = try string(index, name)
        guard allowed.contains(text) else { throw FakeXapiFailure(["INVALID_VALUE", name, text]) }
        return text
    }
}
