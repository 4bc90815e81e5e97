import Foundation
import XenAPIWire

/// `current_operations` as xapi keeps them: an operation is entered under the database lock
/// only when no other is in progress on the object (`OTHER_OPERATION_IN_PROGRESS` otherwise),
/// and `allowed_operations` is empty while it runs.
extension XenAPIService {
    /// Runs `body` with `op` in progress on object `ref` of `cls`.
    func withOperation<T>(_ cls: String, _ ref: String, _ op: String, task: String?, _ body: () throws -> T) throws -> T {
        let key = task ?? ObjectRef.make()
        try checkCancelled(task)
        try db.write { txn in
            try txn.update(cls, ref) { r in
                if let other = r.map("current_operations").values.first {
                    throw APIFailure("OTHER_OPERATION_IN_PROGRESS", cls, ref, other)
                }
                r.setMap("current_operations", [key: op])
                r.fields["allowed_operations"] = .array([])
            }
        }
        defer {
            _ = try? db.write { txn in
                guard var r = txn.find(cls, ref) else { return }
                var ops = r.map("current_operations")
                ops[key] = nil
                r.setMap("current_operations", ops)
                if ops.isEmpty, let spec = DataModel.classes[cls] {
                    r.fields["allowed_operations"] = .array(spec.operations.map { .string($0) })
                }
                txn.put(r)
            }
        }
        return try body()
    }
}
