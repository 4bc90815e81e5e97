/// A XenAPI failure as xapi reports it: `{Status: Failure, ErrorDescription: [code, params…]}`.
public struct APIFailure: Error, Sendable, Hashable, CustomStringConvertible {
    /// The error code followed by its parameters.
    public var errorDescription: [String]

    /// A failure with `code` and its parameters.
    public init(_ code: String, _ params: String...) { errorDescription = [code] + params }

    /// A failure from a whole `ErrorDescription` list.
    public init(list: [String]) { errorDescription = list.isEmpty ? ["INTERNAL_ERROR"] : list }

    /// The error code (the first element).
    public var code: String { errorDescription.first ?? "INTERNAL_ERROR" }

    /// `HANDLE_INVALID [class, ref]`: a reference that names no object of the class.
    public static func handleInvalid(_ cls: String, _ ref: String) -> APIFailure { APIFailure("HANDLE_INVALID", cls, ref) }

    /// `UUID_INVALID [class, uuid]`: a uuid that names no object of the class.
    public static func uuidInvalid(_ cls: String, _ uuid: String) -> APIFailure { APIFailure("UUID_INVALID", cls, uuid) }

    /// `FIELD_TYPE_ERROR [field]`: a parameter of the wrong type.
    public static func fieldType(_ field: String) -> APIFailure { APIFailure("FIELD_TYPE_ERROR", field) }

    /// `MESSAGE_METHOD_UNKNOWN [method]`.
    public static func unknownMethod(_ method: String) -> APIFailure { APIFailure("MESSAGE_METHOD_UNKNOWN", method) }

    /// `SESSION_INVALID [ref]`: a session reference that is not (or no longer) valid.
    public static func sessionInvalid(_ ref: String) -> APIFailure { APIFailure("SESSION_INVALID", ref) }

    /// `MESSAGE_PARAMETER_COUNT_MISMATCH [method, expected, received]` (counts include the session).
    public static func arity(_ method: String, expected: Int, received: Int) -> APIFailure {
        APIFailure("MESSAGE_PARAMETER_COUNT_MISMATCH", method, String(expected), String(received))
    }

    /// `INTERNAL_ERROR [text]`.
    public static func internalError(_ text: String) -> APIFailure { APIFailure("INTERNAL_ERROR", text) }

    /// The code and parameters on one line.
    public var description: String { errorDescription.joined(separator: " ") }
}
