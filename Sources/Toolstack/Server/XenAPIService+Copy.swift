import Foundation
import XenAPIWire

/// `VDI.copy` as a persisted job. The job lives in its task's `other_config` (`copy_stage`,
/// `copy_dst`, `copy_dst_created`, progress and throughput), and every stage records its undo
/// before its side effect: a destination it creates is tagged `other_config:copy_job_task`, and
/// the VBDs it plugs on the control domain (the source and base read-only, the destination
/// read-write, through the SR plugins as any VBD plug) carry the same tag. A failure or a cancel
/// rolls the job back (VBDs unplugged and destroyed, a created destination destroyed); a job
/// found unfinished at start (`recoverCopyJobs`) is rolled back the same way.
extension XenAPIService {
    /// The job's keys in its task's `other_config`.
    enum CopyJobKey {
        static let stage = "copy_stage"
        static let source = "copy_src"
        static let destination = "copy_dst"
        static let created = "copy_dst_created"
        static let done = "copy_bytes_done"
        static let total = "copy_bytes_total"
        static let throughput = "copy_throughput_bytes_per_s"
        static let written = "copy_bytes_written"
        /// How a delta was planned: `layers <n> <m>` (from the chains) or `contents`.
        static let deltaBasis = "copy_delta_basis"
        /// The tag on the VDIs and VBDs a job makes.
        static let tag = "copy_job_task"
    }

    /// `VDI.copy(vdi, sr, base_vdi, into_vdi)` (or the older `VDI.copy(vdi, sr)`): the new or given
    /// destination VDI's reference.
    func vdiCopyJob(_ c: APICall) throws -> XMLRPCValue {
        guard c.args.count == 2 || c.args.count == 4 else {
            throw APIFailure.arity("VDI.copy", expected: 5, received: c.args.count + 1)
        }
        let srcRef = try c.string(0, "vdi")
        let srRef = try c.string(1, "sr")
        let baseRef = c.args.count == 4 ? try c.string(2, "base_vdi") : ObjectRef.null
        let intoRef = c.args.count == 4 ? try c.string(3, "into_vdi") : ObjectRef.null
        let src = try db.read { v in try v.get("VDI", srcRef) }
        let base: ObjectRecord? = try baseRef == ObjectRef.null || baseRef.isEmpty ? nil : db.read { v in try v.get("VDI", baseRef) }
        let into: ObjectRecord? = try intoRef == ObjectRef.null || intoRef.isEmpty ? nil : db.read { v in try v.get("VDI", intoRef) }
        if let into {
            if into.ref == src.ref { throw APIFailure("OPERATION_NOT_ALLOWED", "a VDI cannot be copied into itself") }
            if into.bool("read_only") || into.bool("is_a_snapshot") { throw APIFailure("VDI_READONLY", into.ref) }
            if into.int("virtual_size") < src.int("virtual_size") {
                throw APIFailure("VDI_TOO_SMALL", into.ref, String(src.int("virtual_size")))
            }
        } else {
            _ = try srContext(srRef, attached: true)
        }
        if let base, base.int("virtual_size") > src.int("virtual_size") {
            throw APIFailure("VDI_TOO_SMALL", src.ref, String(base.int("virtual_size")))
        }
        // A synchronous call gets a task of its own to hold the job (destroyed when it ends).
        let task = try c.task ?? createTask(name: "VDI.copy", session: c.session)
        defer { if c.task == nil { _ = try? db.write { txn in if txn.find("task", task) != nil { txn.delete("task", task) } } } }
        let run: () throws -> String = { [self] in
            do {
                return try runCopyJob(c, task: task, src: src, srRef: srRef, base: base, into: into)
            } catch {
                log.warning("VDI.copy \(src.uuid) (task \(task)): \(error); rolling back")
                rollbackCopyJob(task)
                if case VDICopyError.cancelled = error { throw APIFailure("TASK_CANCELLED", task) }
                if let failure = error as? APIFailure { throw failure }
                throw APIFailure("VDI_COPY_FAILED", "\(error)")
            }
        }
        let dst: String = try withOperation("VDI", srcRef, "copy", task: c.task) {
            guard let into else { return try run() }
            return try withOperation("VDI", into.ref, "copy", task: c.task) { try run() }
        }
        return .string(dst)
    }

    /// Merges `values` (nil removes a key) into task `task`'s `other_config`.
    /// `SWIFTSM_TEST_CRASH_AT_JOB_STAGE=<stage>`: the daemon dies as if SIGKILLed right after
    /// recording that stage (before its side effects), for the tests that crash a job at every
    /// stage; `SWIFTSM_TEST_PAUSE_AT_JOB_STAGE=<stage>` pauses there instead.
    func setJob(_ task: String, _ values: [String: String?]) {
        _ = try? db.write { txn in
            try txn.update("task", task) { t in
                var other = t.map("other_config")
                for (k, v) in values { other[k] = v }
                t.setMap("other_config", other)
            }
        }
        if let stage = values[CopyJobKey.stage] ?? nil, stage == Self.crashStage {
            log.critical("test crash at job stage \(stage)")
            _exit(137)
        }
        if let stage = values[CopyJobKey.stage] ?? nil, stage == Self.pauseStage { usleep(1_500_000) }
    }

    private static let crashStage = ProcessInfo.processInfo.environment["SWIFTSM_TEST_CRASH_AT_JOB_STAGE"]
    /// `SWIFTSM_TEST_PAUSE_AT_JOB_STAGE=<stage>`: a pause of 1.5 s after recording that stage,
    /// for the tests that cancel a job at every stage.
    private static let pauseStage = ProcessInfo.processInfo.environment["SWIFTSM_TEST_PAUSE_AT_JOB_STAGE"]

    private func runCopyJob(_ c: APICall, task: String, src: ObjectRecord, srRef: String, base: ObjectRecord?,
                            into: ObjectRecord?) throws -> String {
        let K = CopyJobKey.self
        // Stage create-destination: its undo (destroy what carries this job's tag) comes first.
        setJob(task, [K.stage: "create-destination", K.source: src.ref, K.created: into == nil ? "pending" : "false",
                      K.destination: into?.ref])
        let dst: String
        if let into {
            dst = into.ref
        } else {
            var other = src.map("other_config")
            other[K.tag] = task
            var create = APICall(method: "VDI.create", session: c.session, args: [.struct([
                XMLRPCMember("SR", .string(srRef)), XMLRPCMember("name_label", src.fields["name_label"] ?? ""),
                XMLRPCMember("name_description", src.fields["name_description"] ?? ""),
                XMLRPCMember("virtual_size", .string(String(src.int("virtual_size")))),
                XMLRPCMember("type", src.fields["type"] ?? "user"), XMLRPCMember("sharable", .boolean(src.bool("sharable"))),
                XMLRPCMember("read_only", .boolean(false)), XMLRPCMember("other_config", .struct(other.keys.sorted().map { XMLRPCMember($0, .string(other[$0]!)) })),
                XMLRPCMember("xenstore_data", src.fields["xenstore_data"] ?? .struct([])), XMLRPCMember("sm_config", .struct([])),
                XMLRPCMember("tags", src.fields["tags"] ?? .array([])),
            ])])
            create.task = task
            guard let ref = try vdiCreate(create).stringValue else { throw APIFailure.internalError("VDI.create gave no reference") }
            dst = ref
            setJob(task, [K.destination: dst, K.created: "true"])
        }
        try checkCancelled(task)
        // Stage attach: each VBD record (tagged) is made before its plug.
        setJob(task, [K.stage: "attach"])
        let exports = try attachForJob([(src.ref, true), (dst, false)] + (base.map { [($0.ref, true)] } ?? []), task: task, session: c.session)
        let srcExport = exports[0], dstExport = exports[1], baseExport = base == nil ? nil : exports[2]
        try checkCancelled(task)
        // Stage copy.
        setJob(task, [K.stage: "copy"])
        // SWIFTSM_TEST_COPY_CHUNK_DELAY_MS: a pause per chunk, for the tests that stop a copy midway.
        let delay = ProcessInfo.processInfo.environment["SWIFTSM_TEST_COPY_CHUNK_DELAY_MS"].flatMap { UInt32($0) } ?? 0
        let copier = VDICopier(source: srcExport, destination: dstExport, base: baseExport, delayPerChunk: delay * 1000,
                               layers: base.flatMap { chainLayers(src, $0) })
        let plan = try copier.plan(size: src.int("virtual_size"), destinationIsNew: into == nil)
        let total = plan.reduce(Int64(0)) { $0 + $1.length }
        setJob(task, [K.total: String(total), K.done: "0", K.deltaBasis: copier.deltaBasis])
        setProgress(task, 0.05)
        let started = Date()
        let throttle = CopyProgressThrottle()
        let written = try copier.run(plan, progress: { [self] done in
            let now = Date()
            guard throttle.due(now) || done == total else { return }
            let seconds = max(now.timeIntervalSince(started), 0.001)
            setJob(task, [K.done: String(done), K.throughput: String(Int64(Double(done) / seconds))])
            setProgress(task, 0.05 + 0.9 * (total == 0 ? 1 : Double(done) / Double(total)))
        }, cancelled: { [self] in cancelAsked(task) })
        let seconds = max(Date().timeIntervalSince(started), 0.001)
        setJob(task, [K.done: String(total), K.written: String(written), K.throughput: String(Int64(Double(total) / seconds))])
        try checkCancelled(task)
        // Stage detach.
        setJob(task, [K.stage: "detach"])
        detachCopyVBDs(task)
        // Stage finish: the copy holds the source's content (content_id follows it); the tag goes.
        setJob(task, [K.stage: "finish"])
        try db.write { txn in
            try txn.update("VDI", dst) { r in
                var other = r.map("other_config")
                other[K.tag] = nil
                other["content_id"] = src.map("other_config")["content_id"]
                r.setMap("other_config", other)
            }
        }
        setJob(task, [K.stage: "done"])
        setProgress(task, 0.95)
        return dst
    }

    /// What gives the layers (footer uuids, leaf first) of the chains the datapaths of `src` and
    /// `base` have open on this host, through the `datapath-mirror` plugin; nil unless both are
    /// on one SR (images of two SRs are never shared).
    func chainLayers(_ src: ObjectRecord, _ base: ObjectRecord) -> (@Sendable () throws -> (source: [String], base: [String]))? {
        guard let sr = src.fields["SR"]?.stringValue, sr == base.fields["SR"]?.stringValue,
              let srUUID = try? db.read({ v in try v.get("SR", sr) }).uuid else { return nil }
        let source = src.uuid, base = base.uuid
        return { [self] in
            func layers(_ vdi: String) throws -> [String] {
                try callMirrorPlugin("layers", ["sr_uuid": srUUID, "vdi_uuid": vdi]).split(separator: " ").map(String.init)
            }
            return (try layers(source), try layers(base))
        }
    }

    /// Plugs VBDs of the control domain onto `vdis` (each with its read-only flag) for job `task`,
    /// all at once; their NBD exports, in order. The first failure is thrown once every plug ended
    /// (what was plugged carries the job's tag: the rollback unplugs it).
    func attachForJob(_ vdis: [(vdi: String, readOnly: Bool)], task: String, session: String) throws -> [NBDExport] {
        let results = AttachResults(count: vdis.count)
        DispatchQueue.concurrentPerform(iterations: vdis.count) { i in
            results.set(i, Result { try attachForJob(vdis[i].vdi, readOnly: vdis[i].readOnly, task: task, session: session) })
        }
        return try results.all()
    }

    /// Plugs a VBD of the control domain onto `vdi` for job `task` (the record, tagged, is made
    /// first: it is the undo); the data path's NBD export.
    func attachForJob(_ vdi: String, readOnly: Bool, task: String, session: String) throws -> NBDExport {
        let dom0 = try db.read { v in
            guard let vm = v.all("VM").first(where: { $0.bool("is_control_domain") && $0.string("resident_on") == hostRef }) else {
                throw APIFailure.internalError("no control domain")
            }
            return vm.ref
        }
        var vbd = ObjectRecord(DataModel.vbd, [
            "VM": .string(dom0), "VDI": .string(vdi), "mode": .string(readOnly ? "RO" : "RW"),
            "type": .string("Disk"), "unpluggable": .boolean(true),
            "other_config": .struct([XMLRPCMember("owner", "copy"), XMLRPCMember(CopyJobKey.tag, .string(task))]),
        ])
        try db.write { txn in
            let used = Set(txn.whereField("VBD", "VM", is: dom0).map { $0.string("userdevice") })
            vbd.fields["userdevice"] = .string(String((200...).first { !used.contains(String($0)) }!))
            txn.put(vbd)
        }
        var plug = APICall(method: "VBD.plug", session: session, args: [.string(vbd.ref)])
        plug.task = task
        _ = try vbdPlug(plug, plug: true)
        let address = db.read { $0.find("VBD", vbd.ref) }?.map("runtime_properties")["params_nbd"] ?? ""
        guard let export = NBDExport(paramsNBD: address) else {
            throw APIFailure.internalError("the attach of \(vdi) gave no NBD address (\(address))")
        }
        return export
    }

    /// Unplugs and destroys the VBDs job `task` made (but those in `keeping`). One recorded
    /// unplugged (a plug cut short by a crash) has its VDI deactivated and detached all the same
    /// when no other VBD has it plugged.
    func detachCopyVBDs(_ task: String, keeping: Set<String> = []) {
        let vbds = db.read { v in v.all("VBD").filter { $0.map("other_config")[CopyJobKey.tag] == task && !keeping.contains($0.ref) } }
        // All at once: each unplug is its own plugin calls and data path to stop.
        DispatchQueue.concurrentPerform(iterations: vbds.count) { i in
            let vbd = vbds[i]
            if vbd.bool("currently_attached") {
                if (try? vbdPlug(APICall(method: "VBD.unplug", session: "", args: [.string(vbd.ref)]), plug: false)) == nil {
                    log.warning("copy job \(task): unplugging \(vbd.ref) failed")
                    return
                }
            } else if let vdi = db.read({ $0.find("VDI", vbd.string("VDI")) }),
                      !db.read({ $0.whereField("VBD", "VDI", is: vdi.ref) }).contains(where: { $0.bool("currently_attached") }) {
                deactivateAndDetach(vdi)
            }
            _ = try? db.write { txn in if txn.find("VBD", vbd.ref) != nil { txn.delete("VBD", vbd.ref) } }
        }
    }

    /// `vdi_deactivate` then `vdi_detach` of `vdi` on this host, whatever either answers (a
    /// clean-up: an attachment no VBD records any more).
    func deactivateAndDetach(_ vdi: ObjectRecord) {
        for command in ["vdi_deactivate", "vdi_detach"] {
            if let r = try? smCall(command, vdi: vdi, task: nil) { _ = try? runPlugin(type: r.type, r.0, checkpoint: false) }
        }
    }

    /// Undoes job `task`: its VBDs unplugged and destroyed, a destination it created destroyed.
    /// A given `into_vdi` keeps what was written into it before the stop (as xapi leaves it).
    func rollbackCopyJob(_ task: String) {
        let K = CopyJobKey.self
        setJob(task, [K.stage: "rolling-back"])
        detachCopyVBDs(task)
        let job = db.read { $0.find("task", task) }?.map("other_config") ?? [:]
        destroyJobVDIs(task, also: job[K.created] == "true" ? job[K.destination] : nil)
        setJob(task, [K.stage: "rolled-back"])
    }

    /// Destroys the VDIs job `task` made (those carrying its tag, and `also`).
    func destroyJobVDIs(_ task: String, also: String? = nil) {
        var doomed = Set(db.read { v in v.all("VDI").filter { $0.map("other_config")[CopyJobKey.tag] == task }.map(\.ref) })
        if let also { doomed.insert(also) }
        // A VDI with children (a base composed under a leaf) goes once they have: passes until
        // one destroys nothing more.
        var failures: [String: any Error] = [:]
        while true {
            failures = [:]
            let before = doomed.count
            for vdi in doomed.sorted() {
                guard db.read({ $0.find("VDI", vdi) }) != nil else { doomed.remove(vdi); continue }
                do {
                    _ = try vdiDestroy(APICall(method: "VDI.destroy", session: "", args: [.string(vdi)]))
                    doomed.remove(vdi)
                } catch { failures[vdi] = error }
            }
            if doomed.isEmpty || doomed.count == before { break }
        }
        for (vdi, error) in failures { log.error("job \(task): destroying \(vdi) failed: \(error)") }
    }

    /// At start: every copy job this host left unfinished is rolled back, and what a job tagged
    /// but no job record names any more (VBDs, created VDIs) is removed.
    public func recoverCopyJobs() {
        let K = CopyJobKey.self
        let unfinished = db.read { v in
            v.all("task").filter { t in
                let stage = t.map("other_config")[K.stage]
                return t.string("resident_on") == hostRef && stage != nil && stage != "done" && stage != "rolled-back"
            }.map(\.ref)
        }
        for task in unfinished {
            if db.read({ $0.find("task", task) })?.map("other_config")[MigrateJobKey.leaf] != nil {
                recoverMigrateJob(task)
                continue
            }
            log.notice("copy job \(task) was left unfinished: rolling it back")
            rollbackCopyJob(task)
        }
        let orphans = db.read { v in
            Set((v.all("VBD") + v.all("VDI")).compactMap { r -> String? in
                guard let t = r.map("other_config")[K.tag], v.find("task", t) == nil else { return nil }
                return t
            })
        }
        for task in orphans {
            log.notice("copy job \(task) has no task any more: removing what it made")
            detachCopyVBDs(task)
            for vdi in db.read({ v in v.all("VDI").filter { $0.map("other_config")[K.tag] == task }.map(\.ref) }) {
                _ = try? vdiDestroy(APICall(method: "VDI.destroy", session: "", args: [.string(vdi)]))
            }
        }
    }
}

/// Lets a copy's progress reach the task's record at most four times a second.
final class CopyProgressThrottle: @unchecked Sendable {
    private let lock = NSLock()
    private var last = Date.distantPast

    /// Whether a report at `now` is due (and, if so, the time of the last one is now).
    func due(_ now: Date) -> Bool {
        locked(lock) {
            guard now.timeIntervalSince(last) >= 0.25 else { return false }
            last = now
            return true
        }
    }
}

/// The outcomes of plugs run at once, by position.
private final class AttachResults: @unchecked Sendable {
    private let lock = NSLock()
    private var results: [Result<NBDExport, any Error>?]

    init(count: Int) { results = Array(repeating: nil, count: count) }

    /// Records plug `i`'s outcome.
    func set(_ i: Int, _ result: Result<NBDExport, any Error>) { locked(lock) { results[i] = result } }

    /// Every export in order, or the first failure.
    func all() throws -> [NBDExport] { try locked(lock) { try results.map { try $0!.get() } } }
}
