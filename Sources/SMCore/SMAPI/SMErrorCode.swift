/// One entry of the SM error table (`XE_SR_ERRORCODES.xml`): the fault code, its name and its message.
public struct SMErrorCode: Sendable, Hashable, CustomStringConvertible {
    /// The number a driver puts in `faultCode` (xapi reports it as `SR_BACKEND_FAILURE_<code>`).
    public let code: Int32
    /// The key the Python SM raises it by, e.g. `VDIUnavailable`.
    public let name: String
    /// The message that starts `faultString`, verbatim (some carry a trailing space).
    public let message: String

    /// An entry with the given code, name and message.
    public init(code: Int32, name: String, message: String) {
        self.code = code
        self.name = name
        self.message = message
    }

    /// `<code> <name>: <message>`.
    public var description: String { "\(code) \(name): \(message)" }
}
