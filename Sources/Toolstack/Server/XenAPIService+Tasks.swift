import Foundation
import XenAPIWire

/// Tasks: every `Async.` call runs in one, with `status`, `progress`, `result` and `error_info`.
extension XenAPIService {
    /// A new pending task; its reference.
    func createTask(name: String, session: String, cancellable: Bool = false) throws -> String {
        let t = ObjectRecord(DataModel.task, [
            "name_label": .string(name), "created": .dateTime(XenAPITime.string()), "resident_on": .string(hostRef),
            "status": .string("pending"), "allowed_operations": .array(cancellable ? ["cancel"] : []),
            "other_config": .struct([XMLRPCMember("session", .string(session))]),
        ])
        try db.write { txn in txn.put(t) }
        return t.ref
    }

    /// Records how task `ref` ended: `cancelled` when a cancel stopped it, else success or failure.
    func finishTask(_ ref: String, _ outcome: Result<XMLRPCValue, any Error>) {
        let cancelled = cancelAsked(ref)
        _ = try? db.write { txn in
            try txn.update("task", ref) { t in
                guard t.string("status") == "pending" || t.string("status") == "cancelling" else { return }
                switch outcome {
                case .success(let value):
                    t.fields["status"] = .string("success")
                    t.fields["result"] = .string(XMLRPCEncoder(style: .xapi).encode(value))
                case .failure(let error) where cancelled:
                    _ = error
                    t.fields["status"] = .string("cancelled")
                    t.fields["error_info"] = .array(["TASK_CANCELLED", .string(ref)])
                case .failure(let error):
                    let failure = (error as? APIFailure) ?? .internalError("\(error)")
                    t.fields["status"] = .string("failure")
                    t.fields["error_info"] = .array(failure.errorDescription.map { .string($0) })
                }
                t.fields["progress"] = .double(1)
                t.fields["finished"] = .dateTime(XenAPITime.string())
                t.fields["allowed_operations"] = .array([])
                t.setMap("current_operations", [:])
            }
        }
    }

    /// Sets a running task's progress (0…1).
    func setProgress(_ ref: String?, _ progress: Double) {
        guard let ref else { return }
        _ = try? db.write { txn in try txn.update("task", ref) { $0.fields["progress"] = .double(progress) } }
    }

    /// A safe point of task `ref`'s work: `TASK_CANCELLED` when a cancel was asked.
    func checkCancelled(_ ref: String?) throws {
        if let ref, cancelAsked(ref) { throw APIFailure("TASK_CANCELLED", ref) }
    }

    /// Whether task `ref` was asked to stop: here, or by another host of the pool (its record's
    /// `current_operations` holds `cancel`).
    func cancelAsked(_ ref: String) -> Bool {
        if control(ref)?.isCancelled == true { return true }
        return db.read { $0.find("task", ref) }?.map("current_operations").values.contains("cancel") == true
    }

    /// `task.cancel`: a task whose work has not started is cancelled at once; a running plugin
    /// that can be stopped safely (scan, update, probe) is killed; otherwise the task is marked
    /// `cancelling` and stops at its next safe point (between plugin calls), or completes, as
    /// xapi's tasks do. Only a pending task can be cancelled (`OPERATION_NOT_ALLOWED` otherwise).
    func cancelTask(_ c: APICall) throws -> XMLRPCValue {
        try c.arity(1)
        let ref = try c.string(0, "task")
        let control = control(ref)
        try db.write { txn in
            try txn.update("task", ref) { t in
                guard t.strings("allowed_operations").contains("cancel"), t.string("status") == "pending" else {
                    throw APIFailure("OPERATION_NOT_ALLOWED", "task \(ref) cannot be cancelled")
                }
                t.setMap("current_operations", [ObjectRef.make(): "cancel"])
                t.fields["status"] = .string("cancelling")
            }
        }
        // A task another host of the pool runs: it sees the request at its next safe point.
        let foreign = control == nil && db.read { $0.find("task", ref) }?.string("resident_on") != hostRef
        let request = control?.cancel() ?? (foreign ? .atNextSafePoint : .notStarted)
        if case .notStarted = request {
            // Nothing runs for it: it is cancelled now.
            try db.write { txn in
                try txn.update("task", ref) { t in
                    t.fields["status"] = .string("cancelled")
                    t.fields["progress"] = .double(1)
                    t.fields["finished"] = .dateTime(XenAPITime.string())
                    t.fields["error_info"] = .array(["TASK_CANCELLED", .string(ref)])
                    t.fields["allowed_operations"] = .array([])
                    t.setMap("current_operations", [:])
                }
            }
        }
        log.info("task \(ref) cancel: \(request)")
        return .string("")
    }

    func destroyTask(_ c: APICall) throws -> XMLRPCValue {
        try c.arity(1)
        let ref = try c.string(0, "self")
        try db.write { txn in
            _ = try txn.get("task", ref)
            txn.delete("task", ref)
        }
        return .string("")
    }

    func createMessage(_ c: APICall) throws -> XMLRPCValue {
        try c.arity(5)
        let record = ObjectRecord(DataModel.message, [
            "name": .string(try c.string(0, "name")), "priority": try c.value(1, .int, "priority"),
            "cls": .string(try c.string(2, "cls")), "obj_uuid": .string(try c.string(3, "obj_uuid")),
            "timestamp": .dateTime(XenAPITime.string()), "body": .string(try c.string(4, "body")),
        ])
        try db.write { txn in txn.put(record) }
        return .string(record.ref)
    }
}
