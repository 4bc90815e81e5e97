/// What a LUN's sessions do when every path stops answering in the middle of a request.
///
/// `soft` fails the request after `retries` reconnection attempts; `hold` keeps reconnecting
/// and sending the request again for a bounded time (the data path's default, so that a target
/// restart costs a pause, not an error); `hard` waits for as long as it takes.
public enum ISCSIHoldPolicy: Sendable, Hashable, CustomStringConvertible {
    /// Fail after the target's `retries` further attempts.
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
