import Foundation
import XenAPIWire

/// `VDI.pool_migrate`: a VDI plugged through a VBD on this host moves to another SR while its
/// client goes on reading and writing (xapi's storage motion, with the data path's mirror in
/// tapdisk's place, driven through the `datapath-mirror` host plugin). A persisted job on its
/// task, with `VDI.copy`'s stage and progress keys; each stage records its undo first:
/// - `create-destination`: an empty leaf on the destination SR, made differencing (snapshotted
///   once, that snapshot destroyed, as xapi makes its mirror target), and an empty base; both tagged;
/// - `attach`: the leaf plugged on the control domain (a tagged VBD): its data path runs;
/// - `mirror`: the source's data path makes every change on the leaf's too;
/// - `snapshot`: the source snapshotted (tagged): what it held before the mirror;
/// - `copy`: the snapshot's allocated blocks copied into the base;
/// - `compose`: the base put under the leaf (`vdi_compose`);
/// - `switch`: the source's data path, its client connected, reopens on the leaf and becomes its data path;
/// - `finish`: the VBD points at the leaf, which takes the source's name and records; the source
///   and its snapshot are destroyed.
/// Until the switch, a failure, a cancel or a restart rolls back (the mirror stopped, what the
/// job made destroyed, the source as it was); from the switch on the job completes, at a
/// restart too.
extension XenAPIService {
    /// The migration's own keys in its task's `other_config`.
    enum MigrateJobKey {
        static let vbd = "migrate_vbd"
        static let leaf = "migrate_leaf"
        static let base = "migrate_base"
        static let snapshot = "migrate_snapshot"
        static let sourceSocket = "migrate_src_socket"
        static let switchSeconds = "migrate_switch_seconds"
        /// The host plugin that drives the data paths' mirror.
        static let plugin = "datapath-mirror"
    }

    /// `VDI.pool_migrate(vdi, sr, options)`: the VDI's new reference (on `sr`).
    func vdiPoolMigrate(_ c: APICall) throws -> XMLRPCValue {
        try c.arity(3)
        let srcRef = try c.string(0, "vdi")
        let srRef = try c.string(1, "sr")
        _ = try c.map(2, "options")
        let src = try db.read { v in try v.get("VDI", srcRef) }
        if src.bool("is_a_snapshot") || src.bool("read_only") { throw APIFailure("VDI_READONLY", srcRef) }
        _ = try srContext(srRef, attached: true)
        if src.string("SR") == srRef { throw APIFailure("OPERATION_NOT_ALLOWED", "the VDI is on that SR already") }
        let vbd: ObjectRecord = try db.read { v in
            let plugged = v.whereField("VBD", "VDI", is: srcRef).filter { $0.bool("currently_attached") }
            guard plugged.count == 1, let vbd = plugged.first, vbd.string("mode") == "RW",
                  vbd.map("other_config")[CopyJobKey.tag] == nil else { throw APIFailure("VDI_NEEDS_VM_FOR_MIGRATE", srcRef) }
            return vbd
        }
        let task = try c.task ?? createTask(name: "VDI.pool_migrate", session: c.session)
        defer { if c.task == nil { _ = try? db.write { txn in if txn.find("task", task) != nil { txn.delete("task", task) } } } }
        let leaf: String = try withOperation("VDI", srcRef, "mirror", task: c.task) {
            try withOperation("VBD", vbd.ref, "pause", task: c.task) {
                do {
                    return try runMigrateJob(c, task: task, src: src, vbd: vbd, srRef: srRef)
                } catch {
                    log.warning("VDI.pool_migrate \(src.uuid) (task \(task)): \(error); rolling back")
                    rollbackMigrateJob(task)
                    if case VDICopyError.cancelled = error { throw APIFailure("TASK_CANCELLED", task) }
                    if let failure = error as? APIFailure { throw failure }
                    throw APIFailure("MIRROR_FAILED", srcRef, "\(error)")
                }
            }
        }
        // Switched: the disk is the leaf; the source's operation is over, so it can go.
        setJob(task, [CopyJobKey.stage: "finish"])
        do { try finishMigration(task) } catch {
            log.error("VDI.pool_migrate \(src.uuid) (task \(task)): finishing failed: \(error); the next start finishes it")
            throw APIFailure.internalError("the migration switched but could not finish: \(error)")
        }
        setJob(task, [CopyJobKey.stage: "done"])
        setProgress(task, 0.99)
        return .string(leaf)
    }

    private func runMigrateJob(_ c: APICall, task: String, src: ObjectRecord, vbd: ObjectRecord, srRef: String) throws -> String {
        let K = CopyJobKey.self, M = MigrateJobKey.self
        let socket = NBDExport(paramsNBD: vbd.map("runtime_properties")["params_nbd"] ?? "")?.socketPath ?? ""
        setJob(task, [K.stage: "create-destination", K.source: src.ref, M.vbd: vbd.ref, M.sourceSocket: socket])
        let leaf = try createJobVDI(c, task: task, like: src, sr: srRef, name: src.string("name_label"))
        setJob(task, [M.leaf: leaf])
        let leafRecord = try db.read { v in try v.get("VDI", leaf) }
        let empty = try snapshotOrClone(leafRecord, command: "vdi_snapshot", task: task, otherConfig: [K.tag: task])
        _ = try vdiDestroy(APICall(method: "VDI.destroy", session: c.session, args: [.string(empty)]))
        let base = try createJobVDI(c, task: task, like: src, sr: srRef, name: "base of " + src.string("name_label"))
        setJob(task, [M.base: base])
        try checkCancelled(task)
        setProgress(task, 0.05)

        setJob(task, [K.stage: "attach"])
        _ = try attachForJob(leaf, readOnly: false, task: task, session: c.session)
        try checkCancelled(task)

        setJob(task, [K.stage: "mirror"])
        let (srcSR, dstSR) = try db.read { v in (try v.get("SR", src.string("SR")), try v.get("SR", srRef)) }
        let mirror = ["sr_uuid": srcSR.uuid, "vdi_uuid": src.uuid, "dest_sr_uuid": dstSR.uuid,
                      "dest_vdi_uuid": leafRecord.uuid, "dest_driver": dstSR.string("type")]
        try callMirrorPlugin("start", mirror)
        try checkCancelled(task)

        setJob(task, [K.stage: "snapshot"])
        let snapshot = try snapshotOrClone(src, command: "vdi_snapshot", task: task, otherConfig: [K.tag: task])
        setJob(task, [M.snapshot: snapshot])
        try checkCancelled(task)

        setJob(task, [K.stage: "copy"])
        let exports = try attachForJob([(snapshot, true), (base, false)], task: task, session: c.session)
        let delay = ProcessInfo.processInfo.environment["SWIFTSM_TEST_COPY_CHUNK_DELAY_MS"].flatMap { UInt32($0) } ?? 0
        let copier = VDICopier(source: exports[0], destination: exports[1], base: nil, delayPerChunk: delay * 1000)
        let plan = try copier.plan(size: src.int("virtual_size"), destinationIsNew: true)
        let total = plan.reduce(Int64(0)) { $0 + $1.length }
        setJob(task, [K.total: String(total), K.done: "0"])
        let started = Date()
        let throttle = CopyProgressThrottle()
        _ = try copier.run(plan, progress: { [self] done in
            let now = Date()
            guard throttle.due(now) || done == total else { return }
            setJob(task, [K.done: String(done), K.throughput: String(Int64(Double(done) / max(now.timeIntervalSince(started), 0.001)))])
            setProgress(task, 0.1 + 0.75 * (total == 0 ? 1 : Double(done) / Double(total)))
        }, cancelled: { [self] in cancelAsked(task) })
        setJob(task, [K.done: String(total)])
        let leafVBD = db.read { v in v.whereField("VBD", "VDI", is: leaf).first { $0.map("other_config")[K.tag] == task } }
        detachCopyVBDs(task, keeping: Set([leafVBD?.ref].compactMap { $0 }))
        try checkCancelled(task)

        setJob(task, [K.stage: "compose"])
        var (compose, type) = try smCall("vdi_compose", vdi: leafRecord, task: task)
        compose.args = [base]
        _ = try runPlugin(type: type, compose)
        setProgress(task, 0.9)
        // The last safe point: from the switch on, the disk the client writes to is the leaf.
        try checkCancelled(task)

        setJob(task, [K.stage: "switch"])
        let switchStarted = Date()
        try callMirrorPlugin("switch", mirror)
        setJob(task, [M.switchSeconds: String(format: "%.3f", Date().timeIntervalSince(switchStarted))])
        return leaf
    }

    /// A VDI for migration job `task` on SR `sr`, of `like`'s size and type, tagged with the job.
    private func createJobVDI(_ c: APICall, task: String, like src: ObjectRecord, sr: String, name: String) throws -> String {
        var create = APICall(method: "VDI.create", session: c.session, args: [.struct([
            XMLRPCMember("SR", .string(sr)), XMLRPCMember("name_label", .string(name)),
            XMLRPCMember("name_description", src.fields["name_description"] ?? ""),
            XMLRPCMember("virtual_size", .string(String(src.int("virtual_size")))),
            XMLRPCMember("type", src.fields["type"] ?? "user"), XMLRPCMember("sharable", .boolean(false)),
            XMLRPCMember("read_only", .boolean(false)),
            XMLRPCMember("other_config", .struct([XMLRPCMember(CopyJobKey.tag, .string(task))])),
            XMLRPCMember("sm_config", .struct([])),
        ])])
        create.task = task
        guard let ref = try vdiCreate(create).stringValue else { throw APIFailure.internalError("VDI.create gave no reference") }
        return ref
    }

    /// Runs `function` of the `datapath-mirror` host plugin on this host; its value.
    @discardableResult
    func callMirrorPlugin(_ function: String, _ arguments: [String: String]) throws -> String {
        let session = try createSession(user: "root", originator: "SM")
        defer { destroySession(session) }
        log.info("datapath-mirror \(function) \(arguments["vdi_uuid"] ?? "")\(arguments["dest_vdi_uuid"].map { " -> " + $0 } ?? "")")
        return try plugins.callHostPlugin(MigrateJobKey.plugin, function, arguments, session: session)
    }

    /// The end of a switched migration (run again at a restart until it is done): the client's
    /// VBD takes over the leaf and its activation from the job's VBD, the leaf takes the
    /// source's name and records, the source (deactivated and detached: its data path has moved)
    /// and its snapshot are destroyed.
    func finishMigration(_ task: String) throws {
        let K = CopyJobKey.self, M = MigrateJobKey.self
        let job = db.read { $0.find("task", task) }?.map("other_config") ?? [:]
        guard let vbd = job[M.vbd], let leaf = job[M.leaf], let srcRef = job[K.source] else {
            throw APIFailure.internalError("migration job \(task) has no record of its VDIs")
        }
        let src = db.read { $0.find("VDI", srcRef) }
        try db.write { txn in
            if let jobVBD = txn.whereField("VBD", "VDI", is: leaf).first(where: { $0.map("other_config")[K.tag] == task }) {
                try txn.update("VBD", vbd) { r in
                    r.fields["VDI"] = .string(leaf)
                    r.setMap("runtime_properties", jobVBD.map("runtime_properties"))
                }
                txn.delete("VBD", jobVBD.ref)
            }
            try txn.update("VDI", leaf) { r in
                if let src {
                    for key in ["name_label", "name_description", "xenstore_data", "tags"] { r.fields[key] = src.fields[key] }
                    r.setMap("other_config", src.map("other_config"))
                } else {
                    var other = r.map("other_config")
                    other[K.tag] = nil
                    r.setMap("other_config", other)
                }
            }
            if let base = job[M.base], txn.find("VDI", base) != nil {
                try txn.update("VDI", base) { r in
                    var other = r.map("other_config")
                    other[K.tag] = nil
                    r.setMap("other_config", other)
                }
            }
        }
        if let src {
            deactivateAndDetach(src)
            _ = try vdiDestroy(APICall(method: "VDI.destroy", session: "", args: [.string(src.ref)]))
        }
        if let snapshot = job[M.snapshot], db.read({ $0.find("VDI", snapshot) }) != nil {
            _ = try vdiDestroy(APICall(method: "VDI.destroy", session: "", args: [.string(snapshot)]))
        }
    }

    /// Undoes migration job `task` before its switch: the mirror stopped, the job's VBDs
    /// unplugged, what it made destroyed.
    func rollbackMigrateJob(_ task: String) {
        let K = CopyJobKey.self, M = MigrateJobKey.self
        setJob(task, [K.stage: "rolling-back"])
        let job = db.read { $0.find("task", task) }?.map("other_config") ?? [:]
        if let srcRef = job[K.source], let src = db.read({ $0.find("VDI", srcRef) }),
           let sr = db.read({ $0.find("SR", src.string("SR")) }) {
            do { try callMirrorPlugin("stop", ["sr_uuid": sr.uuid, "vdi_uuid": src.uuid]) } catch {
                log.warning("migration job \(task): stopping the mirror failed: \(error)")
            }
        }
        detachCopyVBDs(task)
        destroyJobVDIs(task)
        setJob(task, [K.stage: "rolled-back", M.switchSeconds: nil])
    }

    /// A migration job found unfinished at start: finished when its switch happened (the
    /// source's data path socket gone, the leaf's there), else rolled back.
    func recoverMigrateJob(_ task: String) {
        let K = CopyJobKey.self, M = MigrateJobKey.self
        let job = db.read { $0.find("task", task) }?.map("other_config") ?? [:]
        var switched = job[K.stage] == "finish"
        if job[K.stage] == "switch", let leaf = job[M.leaf], let socket = job[M.sourceSocket] {
            let leafSocket = db.read { v in
                v.whereField("VBD", "VDI", is: leaf).first { $0.map("other_config")[K.tag] == task }
            }.flatMap { NBDExport(paramsNBD: $0.map("runtime_properties")["params_nbd"] ?? "")?.socketPath }
            switched = !FileManager.default.fileExists(atPath: socket) && leafSocket.map { FileManager.default.fileExists(atPath: $0) } == true
        }
        guard switched else {
            log.notice("migration job \(task) was left unfinished before its switch: rolling it back")
            return rollbackMigrateJob(task)
        }
        log.notice("migration job \(task) was left unfinished after its switch: finishing it")
        do {
            try finishMigration(task)
            setJob(task, [K.stage: "done"])
            // The restart failed the task; the migration it ran did complete.
            _ = try? db.write { txn in
                try txn.update("task", task) { t in
                    t.fields["status"] = .string("success")
                    t.fields["progress"] = .double(1)
                    t.fields["error_info"] = .array([])
                    t.fields["result"] = .string("<value>\(job[M.leaf] ?? "")</value>")
                }
            }
        } catch {
            log.error("migration job \(task): finishing failed: \(error)")
        }
    }
}
