/// Why a command's result value does not have the shape xapi expects (`sm_exec.ml` parsers).
public enum SMAPIResultError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The result is not of the expected type (e.g. not a struct, or not `<nil/>`).
    case wrongType(expected: String, found: String)
    /// A required struct member is absent.
    case missingField(String)
    /// A struct member has the wrong type.
    case wrongFieldType(String, expected: String, found: String)

    /// What was wrong.
    public var description: String {
        switch self {
        case .wrongType(let expected, let found):
            return "expected \(expected), found \(found)"
        case .missingField(let name):
            return "missing field: \(name)"
        case .wrongFieldType(let name, let expected, let found):
            return "field \(name) should be \(expected), found \(found)"
        }
    }
}
