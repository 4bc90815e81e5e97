import Foundation

/// Asynchronous requests a test has started: at most `limit` in flight, waited for together,
/// their errors kept.
public final class RequestFlight: @unchecked Sendable {
    private let condition = NSCondition()
    private var inFlight = 0
    private var errors: [String] = []
    /// Most requests in flight at once.
    public let limit: Int

    /// A flight of at most `limit` requests at once.
    public init(limit: Int) { self.limit = limit }

    /// Counts one more request in flight, waiting while `limit` are.
    public func enter() {
        condition.withLock {
            while inFlight >= limit { condition.wait() }
            inFlight += 1
        }
    }

    /// Ends one, with its error.
    public func leave(_ error: Error?) {
        condition.withLock {
            if let error { errors.append("\(error)") }
            inFlight -= 1
            condition.broadcast()
        }
    }

    /// Waits for every request.
    public func wait() { condition.withLock { while inFlight > 0 { condition.wait() } } }

    /// The errors so far.
    public var failures: [String] { condition.withLock { errors } }
}
