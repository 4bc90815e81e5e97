/// Why an NBD export name was refused; each maps to the option error the client is sent.
public enum NBDExportRefusal: Error, Sendable {
    /// The name's session is not valid (`NBD_REP_ERR_POLICY`).
    case policy(String)
    /// No such export (`NBD_REP_ERR_UNKNOWN`).
    case unknown(String)
    /// The VDI could not be attached for the connection (`NBD_REP_ERR_PLATFORM`).
    case unavailable(String)

    /// The option reply type sent to the client.
    var replyType: UInt32 {
        switch self {
        case .policy: return NBDProtocol.errPolicy
        case .unknown: return NBDProtocol.errUnknown
        case .unavailable: return NBDProtocol.errPlatform
        }
    }

    /// The text sent with the error (no secrets: never the session reference).
    var message: String {
        switch self {
        case .policy(let s), .unknown(let s): return s
        case .unavailable(let s): return "the VDI cannot be attached: \(s)"
        }
    }
}
