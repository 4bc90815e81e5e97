import XenAPIWire

/// One XenAPI call being served: the method, the session it runs in, its arguments after the
/// session, with checks that fail as xapi's do (`MESSAGE_PARAMETER_COUNT_MISMATCH`, `FIELD_TYPE_ERROR`).
public struct APICall: Sendable {
    /// The method without any `Async.` prefix (`VDI.snapshot`).
    public var method: String
    /// The session reference (empty for `session.login_with_password`).
    public var session: String
    /// The arguments after the session.
    public var args: [XMLRPCValue]
    /// The task the call runs in, for `Async.` calls.
    public var task: String?

    /// The class part of the method.
    public var className: String { String(method.prefix { $0 != "." }) }
    /// The message part of the method.
    public var message: String { method.firstIndex(of: ".").map { String(method[method.index(after: $0)...]) } ?? method }

    /// Requires exactly `count` arguments after the session.
    public func arity(_ count: Int) throws(APIFailure) {
        guard args.count == count else { throw .arity(method, expected: count + 1, received: args.count + 1) }
    }

    /// Argument `i` checked against `kind`.
    public func value(_ i: Int, _ kind: FieldKind, _ name: String) throws(APIFailure) -> XMLRPCValue {
        guard i < args.count else { throw .arity(method, expected: i + 2, received: args.count + 1) }
        return try kind.coerce(args[i], name: name)
    }

    /// String argument `i`.
    public func string(_ i: Int, _ name: String) throws(APIFailure) -> String {
        try value(i, .string, name).stringValue ?? ""
    }

    /// Boolean argument `i`.
    public func bool(_ i: Int, _ name: String) throws(APIFailure) -> Bool {
        try value(i, .bool, name).boolValue ?? false
    }

    /// 64-bit integer argument `i`.
    public func int(_ i: Int, _ name: String) throws(APIFailure) -> Int64 {
        Int64(try value(i, .int, name).stringValue ?? "") ?? 0
    }

    /// Map argument `i` as a dictionary.
    public func map(_ i: Int, _ name: String) throws(APIFailure) -> [String: String] {
        var out: [String: String] = [:]
        for m in try value(i, .map, name).structMembers ?? [] { out[m.name] = m.value.stringValue ?? "" }
        return out
    }

    /// Struct argument `i` (a record given to a `create`).
    public func record(_ i: Int, _ name: String) throws(APIFailure) -> [String: XMLRPCValue] {
        guard i < args.count else { throw .arity(method, expected: i + 2, received: args.count + 1) }
        guard let members = args[i].structMembers else { throw .fieldType(name) }
        var out: [String: XMLRPCValue] = [:]
        for m in members { out[m.name] = m.value }
        return out
    }
}
