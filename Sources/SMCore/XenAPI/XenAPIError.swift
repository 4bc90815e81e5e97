/// Why a XenAPI call failed: xapi refused it, the connection failed, or the reply made no sense.
public enum XenAPIError: Error, Sendable, Hashable, CustomStringConvertible {
    /// xapi answered `{Status: "Failure", ErrorDescription: [code, params…]}`.
    case failure([String])
    /// The endpoint could not be reached, or the connection failed or timed out mid-call.
    case transport(String)
    /// xapi's reply was not a well-formed HTTP response carrying a XenAPI result.
    case protocolError(String)

    /// The XenAPI error code (first element of `ErrorDescription`), or nil when this is not a failure.
    public var code: String? {
        if case .failure(let description) = self { return description.first }
        return nil
    }

    /// The parameters after the error code, or an empty array when this is not a failure.
    public var parameters: [String] {
        if case .failure(let description) = self { return Array(description.dropFirst()) }
        return []
    }

    /// A human-readable explanation (never includes a request body, so never a password).
    public var description: String {
        switch self {
        case .failure(let description):
            return "XenAPI failure: [" + description.map { "\"\($0)\"" }.joined(separator: ", ") + "]"
        case .transport(let message):
            return "XenAPI transport error: \(message)"
        case .protocolError(let message):
            return "XenAPI protocol error: \(message)"
        }
    }
}
