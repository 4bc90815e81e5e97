/// Why an SMAPIv1 request could not be accepted. Every case maps, as in the Python SM's
/// `SRCommand.parse` and dispatcher, to fault 143 `BadRequest` (without detail); the case
/// itself says what was wrong, for the log.
public enum SMAPIRequestError: Error, Sendable, Hashable, CustomStringConvertible {
    /// The command line did not hold exactly one argument after the program name.
    case wrongArgumentCount(Int)
    /// The argument is not a well-formed, acceptable XML-RPC method call.
    case unparsable(XMLRPCError)
    /// The call does not carry exactly one parameter.
    case wrongParamCount(Int)
    /// The single parameter is not a struct.
    case paramNotStruct(found: String)
    /// A required member (`device_config`) is absent.
    case missingMember(String)
    /// A member has the wrong XML-RPC type (e.g. `args` not an array of strings).
    case wrongMemberType(String, expected: String)
    /// The method name is not an SMAPIv1 command.
    case unknownCommand(String)

    /// The SMAPIv1 error the driver answers with: 143 `BadRequest`, like the Python SM.
    public var smapiError: SMAPIError { SMAPIError(.BadRequest) }

    /// What was wrong, for the log.
    public var description: String {
        switch self {
        case .wrongArgumentCount(let count):
            return "expected exactly one argument (the XML-RPC request), got \(count)"
        case .unparsable(let error):
            return "unparsable request: \(error)"
        case .wrongParamCount(let count):
            return "expected exactly one parameter (a struct), got \(count)"
        case .paramNotStruct(let found):
            return "expected the parameter to be a struct, found \(found)"
        case .missingMember(let name):
            return "request is missing member \(name)"
        case .wrongMemberType(let name, let expected):
            return "request member \(name) should be \(expected)"
        case .unknownCommand(let name):
            return "unknown command \"\(name)\""
        }
    }
}
