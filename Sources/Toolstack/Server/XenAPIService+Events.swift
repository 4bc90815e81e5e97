import Foundation
import XenAPIWire

/// `event.from`: changes after a token, for some classes, waiting up to a timeout for one.
extension XenAPIService {
    func eventFrom(_ c: APICall) throws -> XMLRPCValue {
        try c.arity(3)
        guard let classValues = c.args[0].arrayValue else { throw APIFailure.fieldType("classes") }
        let classes = Set(classValues.compactMap { $0.stringValue?.lowercased() }.map { $0.split(separator: "/").first.map(String.init) ?? $0 })
        let tokenText = try c.string(1, "token")
        let timeout = try c.value(2, .float, "timeout").doubleValue ?? 0
        if tokenText.isEmpty {
            // A fresh client: every current object of the classes as an `add`.
            return db.read { v in
                let token = db.currentToken
                var events: [XMLRPCValue] = []
                for spec in DataModel.classes.values.sorted(by: { $0.name < $1.name })
                where classes.contains("*") || classes.contains(spec.name.lowercased()) {
                    for r in v.all(spec.name) {
                        events.append(event(id: token, cls: spec.name, ref: r.ref, op: "add", snapshot: v.value(of: r), time: XenAPITime.string()))
                    }
                }
                return result(events, token: token)
            }
        }
        guard let token = Int64(tokenText) else { throw APIFailure("EVENT_FROM_TOKEN_INVALID", tokenText) }
        let deadline = Date().addingTimeInterval(min(max(timeout, 0), 3600))
        guard let (events, newToken) = db.events(after: token, classes: classes, until: deadline) else {
            throw APIFailure("EVENTS_LOST")
        }
        return db.read { v in
            result(events.map { e in
                let snapshot = e.operation == "del" ? v.value(of: e.snapshot) : (v.find(e.cls, e.ref).map(v.value(of:)) ?? v.value(of: e.snapshot))
                return event(id: e.id, cls: e.cls, ref: e.ref, op: e.operation, snapshot: snapshot, time: e.timestamp)
            }, token: newToken)
        }
    }

    private func event(id: Int64, cls: String, ref: String, op: String, snapshot: XMLRPCValue, time: String) -> XMLRPCValue {
        .struct([
            XMLRPCMember("id", .string(String(id))), XMLRPCMember("timestamp", .string(time)),
            XMLRPCMember("class", .string(cls.lowercased())), XMLRPCMember("operation", .string(op)),
            XMLRPCMember("ref", .string(ref)), XMLRPCMember("snapshot", snapshot),
        ])
    }

    private func result(_ events: [XMLRPCValue], token: Int64) -> XMLRPCValue {
        .struct([XMLRPCMember("events", .array(events)), XMLRPCMember("valid_ref_counts", .struct([])),
                 XMLRPCMember("token", .string(String(token)))])
    }
}
