import Foundation
import XenAPIWire

/// Storage through SMAPIv1: SR, PBD, VDI and VBD operations run the SR type's plugin with the
/// document xapi builds and a fresh session, so the plugin's callbacks come back here.
extension XenAPIService {
    func storageHandler(_ call: APICall) -> Handler? {
        switch call.method {
        case "SR.create": return { [self] c in try srCreate(c) }
        case "SR.introduce": return { [self] c in try srIntroduce(c) }
        case "SR.forget": return { [self] c in try srForget(c, destroy: false) }
        case "SR.destroy": return { [self] c in try srForget(c, destroy: true) }
        case "SR.scan": return { [self] c in try srSimple(c, command: "sr_scan", op: "scan") }
        case "SR.update": return { [self] c in try srSimple(c, command: "sr_update", op: "update") }
        case "SR.probe": return { [self] c in try srProbe(c) }
        case "SR.get_supported_types": return { [self] c in try c.arity(0); return .array(plugins.installedTypes().map { .string($0) }) }
        case "PBD.create": return { [self] c in try pbdCreate(c) }
        case "PBD.plug": return { [self] c in try pbdPlug(c, plug: true) }
        case "PBD.unplug": return { [self] c in try pbdPlug(c, plug: false) }
        case "PBD.destroy": return { [self] c in try pbdDestroy(c) }
        case "VDI.create": return { [self] c in try vdiCreate(c) }
        case "VDI.destroy": return { [self] c in try vdiDestroy(c) }
        case "VDI.snapshot": return { [self] c in try vdiCopy(c, command: "vdi_snapshot") }
        case "VDI.clone": return { [self] c in try vdiCopy(c, command: "vdi_clone") }
        case "VDI.copy": return { [self] c in try vdiCopyJob(c) }
        case "VDI.pool_migrate": return { [self] c in try vdiPoolMigrate(c) }
        case "VDI.resize": return { [self] c in try vdiResize(c, online: false) }
        case "VDI.resize_online": return { [self] c in try vdiResize(c, online: true) }
        case "VDI.update": return { [self] c in try vdiUpdate(c) }
        case "VDI.introduce": return { [self] c in try vdiIntroduce(c) }
        case "VDI.forget": return { [self] c in try vdiForget(c) }
        case "VDI.db_introduce": return { [self] c in try vdiDBIntroduce(c) }
        case "VDI.db_forget": return { [self] c in try vdiForget(c) }
        case "VBD.create": return { [self] c in try vbdCreate(c) }
        case "VBD.plug": return { [self] c in try vbdPlug(c, plug: true) }
        case "VBD.unplug": return { [self] c in try vbdPlug(c, plug: false) }
        case "VBD.destroy": return { [self] c in try vbdDestroy(c) }
        default: return nil
        }
    }

    // MARK: - Running the plugin

    /// Plugin commands that may be killed when their task is cancelled: they change nothing a
    /// later call of the same command would not redo (a scan reconciles, an update refreshes).
    static let killableCommands: Set<String> = ["sr_scan", "sr_update", "sr_probe", "vdi_update"]

    /// Runs `call` through the plugin of `type` with a fresh session for its callbacks. Before it
    /// starts is a safe point of the call's task (`checkpoint`; not for clean-up calls), and a
    /// killable command is killed by a cancel of that task.
    func runPlugin(type: String, _ call: SMCall, checkpoint: Bool = true) throws -> XMLRPCValue {
        if checkpoint { try checkCancelled(call.subtaskOf) }
        let session = try createSession(user: "root", originator: "SM")
        defer { destroySession(session) }
        log.info("SM \(type) \(call.command) sr=\(call.sr?.uuid ?? "-") vdi=\(call.vdi?.uuid ?? "-")")
        let control = Self.killableCommands.contains(call.command) ? control(call.subtaskOf) : nil
        defer { control?.endKillable() }
        do {
            return try plugins.run(type: type, document: call.document(session: session, host: hostRef),
                                   started: control.map { c in { pid in c.beginKillable(pid) } })
        } catch {
            log.warning("SM \(type) \(call.command) failed: \(error)")
            throw error
        }
    }

    /// The SR, its type and the device configuration of this host's PBD (attached when `attached`).
    func srContext(_ srRef: String, attached: Bool) throws -> (sr: ObjectRecord, pbd: ObjectRecord?) {
        try db.read { v in
            let sr = try v.get("SR", srRef)
            let pbd = v.whereField("PBD", "SR", is: srRef).first { $0.string("host") == hostRef }
            if attached, pbd?.bool("currently_attached") != true { throw APIFailure("SR_NO_PBDS", srRef) }
            return (sr, pbd)
        }
    }

    private func smCall(_ command: String, _ sr: ObjectRecord, _ pbd: ObjectRecord?, task: String?) -> SMCall {
        var call = SMCall(command)
        call.sr = (sr.uuid, sr.ref)
        call.deviceConfig = pbd?.map("device_config") ?? [:]
        call.subtaskOf = task
        return call
    }

    func smCall(_ command: String, vdi: ObjectRecord, task: String?) throws -> (SMCall, type: String) {
        let (sr, pbd) = try srContext(vdi.string("SR"), attached: true)
        var call = smCall(command, sr, pbd, task: task)
        call.vdi = (vdi.uuid, vdi.ref, vdi.string("location"), vdi.map("sm_config"))
        return (call, sr.string("type"))
    }

    // MARK: - SR

    private func srCreate(_ c: APICall) throws -> XMLRPCValue {
        try c.arity(9)
        let host = try c.string(0, "host")
        let deviceConfig = try c.map(1, "device_config")
        let size = try c.int(2, "physical_size")
        let type = try c.string(5, "type")
        guard plugins.installedTypes().contains(type.lowercased()) else { throw APIFailure("SR_UNKNOWN_DRIVER", type) }
        let sr = ObjectRecord(DataModel.sr, [
            "name_label": .string(try c.string(3, "name_label")), "name_description": .string(try c.string(4, "name_description")),
            "type": .string(type.lowercased()), "content_type": .string(try c.string(6, "content_type")),
            "shared": .boolean(try c.bool(7, "shared")), "sm_config": try c.value(8, .map, "sm_config"),
            "physical_size": .string(String(size)),
        ])
        var pbd = ObjectRecord(DataModel.pbd, ["host": .string(host), "SR": .string(sr.ref)])
        pbd.setMap("device_config", deviceConfig)
        try db.write { txn in
            _ = try txn.get("host", host)
            txn.put(sr)
            txn.put(pbd)
        }
        do {
            var call = smCall("sr_create", sr, pbd, task: c.task)
            call.args = [String(size)]
            _ = try runPlugin(type: type, call)
        } catch {
            try? db.write { txn in txn.delete("PBD", pbd.ref); txn.delete("SR", sr.ref) }
            throw error
        }
        setProgress(c.task, 0.5)
        try plug(pbd.ref, task: c.task)
        return .string(sr.ref)
    }

    private func srIntroduce(_ c: APICall) throws -> XMLRPCValue {
        try c.arity(7)
        var uuid = try c.string(0, "uuid")
        if uuid.isEmpty { uuid = ObjectRef.uuid() }
        let type = try c.string(3, "type").lowercased()
        let sr = ObjectRecord(DataModel.sr, uuid: uuid, [
            "name_label": .string(try c.string(1, "name_label")), "name_description": .string(try c.string(2, "name_description")),
            "type": .string(type), "content_type": .string(try c.string(4, "content_type")),
            "shared": .boolean(try c.bool(5, "shared")), "sm_config": try c.value(6, .map, "sm_config"),
        ])
        try db.write { txn in
            if txn.all("SR").contains(where: { $0.uuid == uuid }) { throw APIFailure("SR_UUID_EXISTS", uuid) }
            txn.put(sr)
        }
        return .string(sr.ref)
    }

    private func srForget(_ c: APICall, destroy: Bool) throws -> XMLRPCValue {
        try c.arity(1)
        let ref = try c.string(0, "sr")
        let (sr, pbd) = try srContext(ref, attached: false)
        let pbds = db.read { $0.whereField("PBD", "SR", is: ref) }
        if pbds.contains(where: { $0.bool("currently_attached") }) { throw APIFailure("SR_HAS_PBD", ref) }
        try withOperation("SR", ref, destroy ? "destroy" : "forget", task: c.task) {
            if destroy {
                guard pbd != nil else { throw APIFailure("SR_NO_PBDS", ref) }
                _ = try runPlugin(type: sr.string("type"), smCall("sr_delete", sr, pbd, task: c.task))
            }
        }
        try db.write { txn in
            for vdi in txn.whereField("VDI", "SR", is: ref) {
                for vbd in txn.whereField("VBD", "VDI", is: vdi.ref) { txn.delete("VBD", vbd.ref) }
                txn.delete("VDI", vdi.ref)
            }
            for p in txn.whereField("PBD", "SR", is: ref) { txn.delete("PBD", p.ref) }
            if txn.find("SR", ref) != nil { txn.delete("SR", ref) }
        }
        return .string("")
    }

    private func srSimple(_ c: APICall, command: String, op: String) throws -> XMLRPCValue {
        try c.arity(1)
        let ref = try c.string(0, "sr")
        let (sr, pbd) = try srContext(ref, attached: true)
        try withOperation("SR", ref, op, task: c.task) {
            _ = try runPlugin(type: sr.string("type"), smCall(command, sr, pbd, task: c.task))
        }
        return .string("")
    }

    private func srProbe(_ c: APICall) throws -> XMLRPCValue {
        try c.arity(4)
        _ = try db.read { v in try v.get("host", try c.string(0, "host")) }
        var call = SMCall("sr_probe")
        call.deviceConfig = try c.map(1, "device_config")
        call.srSMConfig = try c.map(3, "sm_config")
        call.subtaskOf = c.task
        return try runPlugin(type: try c.string(2, "type"), call)
    }

    // MARK: - PBD

    private func pbdCreate(_ c: APICall) throws -> XMLRPCValue {
        try c.arity(1)
        let given = try c.record(0, "args")
        guard let host = given["host"]?.stringValue, let sr = given["SR"]?.stringValue else { throw APIFailure.fieldType("args") }
        var pbd = ObjectRecord(DataModel.pbd, ["host": .string(host), "SR": .string(sr)])
        if let dc = given["device_config"] { pbd.fields["device_config"] = try FieldKind.map.coerce(dc, name: "device_config") }
        if let oc = given["other_config"] { pbd.fields["other_config"] = try FieldKind.map.coerce(oc, name: "other_config") }
        try db.write { txn in
            _ = try txn.get("host", host)
            _ = try txn.get("SR", sr)
            if txn.whereField("PBD", "SR", is: sr).contains(where: { $0.string("host") == host }) {
                throw APIFailure("PBD_EXISTS", sr, host)
            }
            txn.put(pbd)
        }
        return .string(pbd.ref)
    }

    private func pbdPlug(_ c: APICall, plug attach: Bool) throws -> XMLRPCValue {
        try c.arity(1)
        let ref = try c.string(0, "self")
        if attach { try plug(ref, task: c.task) } else { try unplug(ref, task: c.task) }
        return .string("")
    }

    /// `sr_attach` through the PBD (the plugin scans the SR on the master), then marks it attached.
    func plug(_ pbdRef: String, task: String?) throws {
        let pbd = try db.read { v in try v.get("PBD", pbdRef) }
        guard !pbd.bool("currently_attached") else { return }
        let (sr, _) = try srContext(pbd.string("SR"), attached: false)
        try withOperation("SR", sr.ref, "plug", task: task) {
            _ = try runPlugin(type: sr.string("type"), smCall("sr_attach", sr, pbd, task: task))
            try db.write { txn in try txn.update("PBD", pbdRef) { $0.fields["currently_attached"] = .boolean(true) } }
        }
    }

    private func unplug(_ pbdRef: String, task: String?) throws {
        let pbd = try db.read { v in try v.get("PBD", pbdRef) }
        guard pbd.bool("currently_attached") else { return }
        let (sr, _) = try srContext(pbd.string("SR"), attached: false)
        let busy = db.read { v in
            v.whereField("VDI", "SR", is: sr.ref).first { vdi in v.whereField("VBD", "VDI", is: vdi.ref).contains { $0.bool("currently_attached") } }
        }
        if let busy { throw APIFailure("VDI_IN_USE", busy.ref, "unplug") }
        try withOperation("SR", sr.ref, "unplug", task: task) {
            _ = try runPlugin(type: sr.string("type"), smCall("sr_detach", sr, pbd, task: task))
            try db.write { txn in try txn.update("PBD", pbdRef) { $0.fields["currently_attached"] = .boolean(false) } }
        }
    }

    private func pbdDestroy(_ c: APICall) throws -> XMLRPCValue {
        try c.arity(1)
        let ref = try c.string(0, "self")
        try db.write { txn in
            let pbd = try txn.get("PBD", ref)
            if pbd.bool("currently_attached") { throw APIFailure("OPERATION_NOT_ALLOWED", "PBD is currently attached") }
            txn.delete("PBD", ref)
        }
        return .string("")
    }

    // MARK: - VDI

    func vdiCreate(_ c: APICall) throws -> XMLRPCValue {
        try c.arity(1)
        let given = try c.record(0, "args")
        let spec = DataModel.vdi
        func field(_ name: String) throws -> XMLRPCValue? {
            guard let v = given[name] else { return nil }
            return try spec.field(name)!.kind.coerce(v, name: name)
        }
        guard let srRef = try field("SR")?.stringValue else { throw APIFailure.fieldType("SR") }
        let size = try field("virtual_size")?.stringValue ?? "0"
        let nameLabel = try field("name_label")?.stringValue ?? ""
        let nameDescription = try field("name_description")?.stringValue ?? ""
        let readOnly = try field("read_only")?.boolValue ?? false
        let (sr, pbd) = try srContext(srRef, attached: true)
        var call = smCall("vdi_create", sr, pbd, task: c.task)
        call.args = [size, nameLabel, nameDescription, ObjectRef.null, "false", XenAPITime.epoch, ObjectRef.null,
                     readOnly ? "true" : "false"]
        if let smConfig = try field("sm_config")?.structMembers {
            call.vdiSMConfig = Dictionary(smConfig.map { ($0.name, $0.value.stringValue ?? "") }) { $1 }
        }
        let info = try runPlugin(type: sr.string("type"), call)
        let ref = try adopt(info, sr: sr.ref, defaults: ["name_label": .string(nameLabel), "name_description": .string(nameDescription),
                                                          "virtual_size": .string(size), "read_only": .boolean(readOnly)])
        try db.write { txn in
            try txn.update("VDI", ref) { r in
                r.fields["name_label"] = .string(nameLabel)
                r.fields["name_description"] = .string(nameDescription)
                for name in ["type", "sharable", "other_config", "xenstore_data", "tags"] {
                    if let v = try field(name) { r.fields[name] = v }
                }
                if let sm = try field("sm_config")?.structMembers {
                    var merged = r.map("sm_config")
                    for m in sm where merged[m.name] == nil { merged[m.name] = m.value.stringValue ?? "" }
                    r.setMap("sm_config", merged)
                }
            }
        }
        return .string(ref)
    }

    /// The VDI named by a plugin's `{uuid, location}` answer: the record its callbacks introduced,
    /// or one made here when it made none (a plugin without callbacks).
    private func adopt(_ info: XMLRPCValue, sr: String, defaults: [String: XMLRPCValue]) throws -> String {
        guard let uuid = info[member: "uuid"]?.stringValue else {
            throw APIFailure("SR_BACKEND_FAILURE", "the plugin's answer has no uuid", "\(info)", "")
        }
        return try db.write { txn in
            if let existing = txn.all("VDI").first(where: { $0.uuid == uuid }) { return existing.ref }
            var values = defaults
            values["SR"] = .string(sr)
            values["location"] = .string(info[member: "location"]?.stringValue ?? uuid)
            let r = ObjectRecord(DataModel.vdi, uuid: uuid, values)
            txn.put(r)
            return r.ref
        }
    }

    func vdiDestroy(_ c: APICall) throws -> XMLRPCValue {
        try c.arity(1)
        let ref = try c.string(0, "self")
        let vdi = try db.read { v in try v.get("VDI", ref) }
        if db.read({ $0.whereField("VBD", "VDI", is: ref) }).contains(where: { $0.bool("currently_attached") }) {
            throw APIFailure("VDI_IN_USE", ref, "destroy")
        }
        try withOperation("VDI", ref, "destroy", task: c.task) {
            let (call, type) = try smCall("vdi_delete", vdi: vdi, task: c.task)
            _ = try runPlugin(type: type, call)
        }
        try db.write { txn in
            for vbd in txn.whereField("VBD", "VDI", is: ref) { txn.delete("VBD", vbd.ref) }
            if txn.find("VDI", ref) != nil { txn.delete("VDI", ref) }
        }
        return .string("")
    }

    private func vdiCopy(_ c: APICall, command: String) throws -> XMLRPCValue {
        try c.arity(c.args.count == 1 ? 1 : 2)
        let ref = try c.string(0, "vdi")
        let params = c.args.count == 2 ? try c.map(1, "driver_params") : [:]
        let vdi = try db.read { v in try v.get("VDI", ref) }
        let newRef: String = try withOperation("VDI", ref, command == "vdi_snapshot" ? "snapshot" : "clone", task: c.task) {
            try snapshotOrClone(vdi, command: command, driverParams: params, task: c.task)
        }
        return .string(newRef)
    }

    /// Runs `vdi_snapshot` or `vdi_clone` of `vdi` and records the new VDI (named as `vdi`, its
    /// `other_config` plus `otherConfig`); its reference. The caller holds the VDI's operation.
    func snapshotOrClone(_ vdi: ObjectRecord, command: String, driverParams: [String: String] = [:], task: String?,
                         otherConfig: [String: String] = [:]) throws -> String {
        let snapshot = command == "vdi_snapshot"
        var (call, type) = try smCall(command, vdi: vdi, task: task)
        call.driverParams = driverParams
        let info = try runPlugin(type: type, call)
        let newRef = try adopt(info, sr: vdi.string("SR"), defaults: ["virtual_size": vdi.fields["virtual_size"] ?? .string("0")])
        try db.write { txn in
            try txn.update("VDI", newRef) { r in
                r.fields["name_label"] = vdi.fields["name_label"]
                r.fields["name_description"] = vdi.fields["name_description"]
                r.fields["type"] = vdi.fields["type"]
                r.setMap("other_config", vdi.map("other_config").merging(otherConfig) { $1 })
                if snapshot {
                    r.fields["is_a_snapshot"] = .boolean(true)
                    r.fields["snapshot_of"] = .string(vdi.ref)
                    r.fields["snapshot_time"] = .dateTime(XenAPITime.string())
                }
            }
        }
        return newRef
    }

    private func vdiResize(_ c: APICall, online: Bool) throws -> XMLRPCValue {
        try c.arity(2)
        let ref = try c.string(0, "vdi")
        let size = try c.int(1, "size")
        let vdi = try db.read { v in try v.get("VDI", ref) }
        let attached = db.read { $0.whereField("VBD", "VDI", is: ref) }.contains { $0.bool("currently_attached") }
        if attached && !online { throw APIFailure("VDI_IN_USE", ref, "resize") }
        try withOperation("VDI", ref, online ? "resize_online" : "resize", task: c.task) {
            var (call, type) = try smCall(online ? "vdi_resize_online" : "vdi_resize", vdi: vdi, task: c.task)
            call.args = [String(size)]
            _ = try runPlugin(type: type, call)
        }
        return .string("")
    }

    private func vdiUpdate(_ c: APICall) throws -> XMLRPCValue {
        try c.arity(1)
        let ref = try c.string(0, "vdi")
        let vdi = try db.read { v in try v.get("VDI", ref) }
        try withOperation("VDI", ref, "update", task: c.task) {
            let (call, type) = try smCall("vdi_update", vdi: vdi, task: c.task)
            _ = try runPlugin(type: type, call)
        }
        return .string("")
    }

    private func vdiForget(_ c: APICall) throws -> XMLRPCValue {
        try c.arity(1)
        let ref = try c.string(0, "vdi")
        try db.write { txn in
            _ = try txn.get("VDI", ref)
            for vbd in txn.whereField("VBD", "VDI", is: ref) where !vbd.bool("currently_attached") { txn.delete("VBD", vbd.ref) }
            txn.delete("VDI", ref)
        }
        return .string("")
    }

    /// `VDI.introduce`: `vdi_introduce` makes the record of a volume the SR holds (by uuid and location).
    private func vdiIntroduce(_ c: APICall) throws -> XMLRPCValue {
        guard (11...18).contains(c.args.count) else { throw APIFailure.arity(c.method, expected: 19, received: c.args.count + 1) }
        let uuid = try c.string(0, "uuid")
        let srRef = try c.string(3, "SR")
        let location = try c.string(8, "location")
        if db.read({ $0.all("VDI") }).contains(where: { $0.uuid == uuid }) { throw APIFailure("VDI_EXISTS", uuid) }
        let (sr, pbd) = try srContext(srRef, attached: true)
        var call = smCall("vdi_introduce", sr, pbd, task: c.task)
        call.vdi = (uuid, ObjectRef.null, location, try c.map(10, "sm_config"))
        call.newUUID = uuid
        let info = try runPlugin(type: sr.string("type"), call)
        let ref = try adopt(info, sr: srRef, defaults: [:])
        try db.write { txn in
            try txn.update("VDI", ref) { r in
                r.fields["name_label"] = .string(try c.string(1, "name_label"))
                r.fields["name_description"] = .string(try c.string(2, "name_description"))
                r.fields["other_config"] = try c.value(7, .map, "other_config")
            }
        }
        return .string(ref)
    }

    /// `VDI.db_introduce`: the record a plugin makes for a volume it created or found.
    private func vdiDBIntroduce(_ c: APICall) throws -> XMLRPCValue {
        guard (11...19).contains(c.args.count) else { throw APIFailure.arity(c.method, expected: 20, received: c.args.count + 1) }
        let names = ["uuid", "name_label", "name_description", "SR", "type", "sharable", "read_only", "other_config",
                     "location", "xenstore_data", "sm_config", "managed", "virtual_size", "physical_utilisation",
                     "metadata_of_pool", "is_a_snapshot", "snapshot_time", "snapshot_of", "cbt_enabled"]
        var values: [String: XMLRPCValue] = [:]
        for (i, name) in names.enumerated() where i < c.args.count {
            values[name] = try c.value(i, DataModel.vdi.field(name)!.kind, name)
        }
        let uuid = values["uuid"]?.stringValue ?? ""
        let sr = values["SR"]?.stringValue ?? ""
        let record = ObjectRecord(DataModel.vdi, uuid: uuid.isEmpty ? ObjectRef.uuid() : uuid, values.filter { $0.key != "uuid" })
        try db.write { txn in
            _ = try txn.get("SR", sr)
            if txn.all("VDI").contains(where: { $0.uuid == record.uuid }) {
                throw APIFailure.internalError("Db_exn.Uniqueness_constraint_violation(\"VDI\", \"uuid\", \"\(record.uuid)\")")
            }
            txn.put(record)
        }
        return .string(record.ref)
    }

    // MARK: - VBD

    private func vbdCreate(_ c: APICall) throws -> XMLRPCValue {
        try c.arity(1)
        let given = try c.record(0, "args")
        let spec = DataModel.vbd
        var vbd = ObjectRecord(spec)
        for (name, value) in given {
            guard let f = spec.field(name), f.reverse == nil, !["uuid", "currently_attached", "allowed_operations", "current_operations"].contains(name) else { continue }
            vbd.fields[name] = try f.kind.coerce(value, name: name)
        }
        guard ["RO", "RW"].contains(vbd.string("mode")) else { throw APIFailure("INVALID_VALUE", "mode", vbd.string("mode")) }
        try db.write { txn in
            let vm = vbd.string("VM")
            _ = try txn.get("VM", vm)
            let vdi = vbd.string("VDI")
            if vdi != ObjectRef.null {
                _ = try txn.get("VDI", vdi)
            } else {
                vbd.fields["empty"] = .boolean(true)
            }
            let device = vbd.string("userdevice")
            if !device.isEmpty, device != "autodetect",
               txn.whereField("VBD", "VM", is: vm).contains(where: { $0.string("userdevice") == device }) {
                throw APIFailure("DEVICE_ALREADY_EXISTS", device)
            }
            if device.isEmpty || device == "autodetect" {
                let used = Set(txn.whereField("VBD", "VM", is: vm).map { $0.string("userdevice") })
                vbd.fields["userdevice"] = .string(String((0...).first { !used.contains(String($0)) }!))
            }
            txn.put(vbd)
        }
        return .string(vbd.ref)
    }

    func vbdPlug(_ c: APICall, plug attach: Bool) throws -> XMLRPCValue {
        try c.arity(1)
        let ref = try c.string(0, "self")
        let vbd = try db.read { v in try v.get("VBD", ref) }
        if attach == vbd.bool("currently_attached") {
            throw APIFailure(attach ? "DEVICE_ALREADY_ATTACHED" : "DEVICE_ALREADY_DETACHED", ref)
        }
        let vdiRef = vbd.string("VDI")
        let vdi = try db.read { v in try v.get("VDI", vdiRef) }
        let writable = vbd.string("mode") == "RW" ? "true" : "false"
        if attach, writable == "true",
           db.read({ $0.whereField("VBD", "VDI", is: vdiRef) }).contains(where: { $0.ref != ref && $0.bool("currently_attached") && $0.string("mode") == "RW" }) {
            throw APIFailure("VDI_IN_USE", vdiRef, "plug")
        }
        try withOperation("VBD", ref, attach ? "plug" : "unplug", task: c.task) {
            if attach {
                var (call, type) = try smCall("vdi_attach", vdi: vdi, task: c.task)
                call.args = [writable]
                let result = try runPlugin(type: type, call)
                call.command = "vdi_activate"
                do { _ = try runPlugin(type: type, call) } catch {
                    // A failed (or cancelled) activation leaves the VDI detached again.
                    call.command = "vdi_detach"
                    call.args = []
                    _ = try? runPlugin(type: type, call, checkpoint: false)
                    throw error
                }
                var runtime: [String: String] = [:]
                for key in ["params", "params_nbd", "o_direct_reason"] {
                    if let v = result[member: key]?.stringValue { runtime[key] = v }
                }
                try db.write { txn in
                    try txn.update("VBD", ref) { r in
                        r.fields["currently_attached"] = .boolean(true)
                        r.fields["device"] = .string("xvd" + String(UnicodeScalar(UInt8(97 + (Int(r.string("userdevice")) ?? 0) % 26))))
                        r.setMap("runtime_properties", runtime)
                    }
                }
            } else {
                var (call, type) = try smCall("vdi_deactivate", vdi: vdi, task: c.task)
                _ = try runPlugin(type: type, call)
                // Once deactivated, the detach follows whatever a cancel asks.
                call.command = "vdi_detach"
                _ = try runPlugin(type: type, call, checkpoint: false)
                try db.write { txn in
                    try txn.update("VBD", ref) { r in
                        r.fields["currently_attached"] = .boolean(false)
                        r.fields["device"] = .string("")
                        r.setMap("runtime_properties", [:])
                    }
                }
            }
        }
        return .string("")
    }

    private func vbdDestroy(_ c: APICall) throws -> XMLRPCValue {
        try c.arity(1)
        let ref = try c.string(0, "self")
        try db.write { txn in
            let vbd = try txn.get("VBD", ref)
            if vbd.bool("currently_attached") { throw APIFailure("DEVICE_ALREADY_ATTACHED", ref) }
            txn.delete("VBD", ref)
        }
        return .string("")
    }

    // MARK: - Restart

    /// After a start: the PBDs recorded attached on this host are attached again (`sr_attach`, whose
    /// scan reconciles the records with what the SR holds); one that fails is marked unplugged.
    public func reattachStorage() {
        let pbds = db.read { v in v.all("PBD").filter { $0.string("host") == hostRef && $0.bool("currently_attached") } }
        for pbd in pbds {
            do {
                let (sr, _) = try srContext(pbd.string("SR"), attached: false)
                _ = try runPlugin(type: sr.string("type"), smCall("sr_attach", sr, pbd, task: nil))
            } catch {
                log.warning("re-attaching PBD \(pbd.ref) failed: \(error)")
                _ = try? db.write { txn in try txn.update("PBD", pbd.ref) { $0.fields["currently_attached"] = .boolean(false) } }
            }
        }
    }

    // MARK: - SM records

    /// Creates or refreshes one SM record per installed plugin from its `sr_get_driver_info`.
    public func registerPlugins() {
        for type in plugins.installedTypes() {
            do {
                let info = try plugins.run(type: type, document: SMCall("sr_get_driver_info").document(session: nil, host: hostRef))
                var configuration: [String: String] = [:]
                for item in info[member: "configuration"]?.arrayValue ?? [] {
                    if let key = item[member: "key"]?.stringValue { configuration[key] = item[member: "description"]?.stringValue ?? "" }
                }
                let caps = (info[member: "capabilities"]?.arrayValue ?? []).compactMap(\.stringValue)
                try db.write { txn in
                    var sm = txn.all("SM").first { $0.string("type") == type } ?? ObjectRecord(DataModel.sm)
                    sm.fields["name_label"] = .string(info[member: "name"]?.stringValue ?? type)
                    sm.fields["name_description"] = .string(info[member: "description"]?.stringValue ?? "")
                    sm.fields["type"] = .string(type)
                    sm.fields["vendor"] = .string(info[member: "vendor"]?.stringValue ?? "")
                    sm.fields["copyright"] = .string(info[member: "copyright"]?.stringValue ?? "")
                    sm.fields["version"] = .string(info[member: "driver_version"]?.stringValue ?? "")
                    sm.fields["required_api_version"] = .string(info[member: "required_api_version"]?.stringValue ?? "")
                    sm.setMap("configuration", configuration)
                    sm.fields["capabilities"] = .array(caps.map { .string(String($0.prefix { $0 != "/" })) })
                    var features: [String: String] = [:]
                    for cap in caps {
                        let parts = cap.split(separator: "/")
                        features[String(parts[0])] = parts.count > 1 ? String(parts[1]) : "1"
                    }
                    sm.fields["features"] = .struct(features.keys.sorted().map { XMLRPCMember($0, .string(features[$0]!)) })
                    sm.fields["driver_filename"] = .string(plugins.executable(type: type))
                    txn.put(sm)
                }
            } catch {
                log.warning("plugin \(type): sr_get_driver_info failed: \(error)")
            }
        }
    }
}
