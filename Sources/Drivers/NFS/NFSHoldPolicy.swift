/// What the client does when the server stops answering in the middle of an operation.
///
/// The kernel's soft mount fails the request after `timeo × retrans` (guests then see EIO and
/// remount read-only); its hard mount waits forever. The data path's default holds requests
/// through an outage of a bounded length, reconnecting by itself and sending again what was not
/// answered, and only then fails them.
public enum NFSHoldPolicy: Sendable, Hashable, CustomStringConvertible {
    /// Fail once `retrans` further attempts of `timeo` each have gone unanswered.
    case soft
    /// Keep trying for `seconds`, then fail.
    case hold(seconds: Double)
    /// Keep trying for as long as it takes.
    case hard

    /// `soft`, `hold(300 s)`, `hard`.
    public var description: String {
        switch self {
        case .soft: "soft"
        case let .hold(s): "hold(\(Int(s)) s)"
        case .hard: "hard"
        }
    }
}
