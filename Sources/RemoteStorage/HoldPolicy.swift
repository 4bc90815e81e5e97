import Foundation

/// What a client of a storage server (an NFS export, an iSCSI target) does when the server
/// stops answering in the middle of an operation.
///
/// The kernel's soft mount fails the request after its timeouts and retries (guests then see
/// EIO and remount read-only); its hard mount waits forever. The data path's default holds
/// requests through an outage of a bounded length, reconnecting by itself and sending again what
/// was not answered, and only then fails them.
public enum HoldPolicy: Sendable, Hashable, CustomStringConvertible {
    /// Fail once the client's further attempts (NFS `retrans`, iSCSI retries) went unanswered.
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

    /// Whether an operation that started at `started` and has failed `attempts` times may try
    /// again: `softAttempts` further attempts under `soft` (and for an operation that is not
    /// `idempotent`, whose first attempt may have been carried out), else as the policy says.
    public func allowsRetry(after started: Date, attempts: Int, softAttempts: Int, idempotent: Bool = true) -> Bool {
        let soft = attempts <= softAttempts
        guard idempotent else { return soft }
        switch self {
        case .soft: return soft
        case let .hold(seconds): return Date().timeIntervalSince(started) < seconds
        case .hard: return true
        }
    }

    /// How long to wait before attempt `attempts + 1`: a refused connection answers at once,
    /// so a client must not spin while the server is down.
    public static func backoff(attempts: Int) -> Double { min(2.0, 0.25 * Double(attempts)) }
}
