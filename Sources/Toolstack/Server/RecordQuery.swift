import Foundation
import XenAPIWire

/// The query language of `get_all_records_where` that clients use: `true`, or comparisons
/// `field "name" = "value"` joined by `and`.
public struct RecordQuery: Sendable {
    /// The (field, value) pairs that must all match.
    public var conditions: [(field: String, value: String)]

    /// Parses `expression`, or `INTERNAL_ERROR` for what the language does not have.
    public init(_ expression: String) throws(APIFailure) {
        let trimmed = expression.trimmingCharacters(in: .whitespaces)
        conditions = []
        if trimmed == "true" || trimmed.isEmpty { return }
        for clause in trimmed.components(separatedBy: " and ") {
            let parts = clause.trimmingCharacters(in: .whitespaces).components(separatedBy: "\"")
            guard parts.count == 5, parts[0].trimmingCharacters(in: .whitespaces) == "field",
                  parts[2].trimmingCharacters(in: .whitespaces) == "=" else {
                throw .internalError("unsupported query: \(expression)")
            }
            conditions.append((parts[1], parts[3]))
        }
    }

    /// Whether `record` satisfies every condition.
    public func matches(_ record: ObjectRecord, _ view: DatabaseSnapshot) -> Bool {
        conditions.allSatisfy { c in
            guard let v = record.fields[c.field] else { return false }
            switch v {
            case .string(let s), .dateTime(let s): return s == c.value
            case .boolean(let b): return (b ? "true" : "false") == c.value
            case .double(let d): return String(d) == c.value
            default: return false
            }
        }
    }
}
