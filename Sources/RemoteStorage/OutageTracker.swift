import Foundation

/// How long a storage server has not answered and how many operations wait for it, for a data
/// path's stats: operations that start waiting `begin()`, and `end()` when they are answered
/// or give up.
public final class OutageTracker: @unchecked Sendable {
    private let lock = NSLock()
    private var waiting = 0
    private var since: Date?
    private var count: UInt64 = 0

    /// A tracker with nothing waiting.
    public init() {}

    /// An operation starts waiting for the server.
    public func begin() {
        lock.withLock {
            waiting += 1
            count += 1
            if since == nil { since = Date() }
        }
    }

    /// An operation that waited is answered or gives up.
    public func end() {
        lock.withLock {
            waiting -= 1
            if waiting == 0 { since = nil }
        }
    }

    /// Since when operations wait and how many, nil while the server answers.
    public var holding: (since: Date, operations: Int)? {
        lock.withLock { since.map { ($0, waiting) } }
    }

    /// How many operations have had to wait since the tracker was made.
    public var heldOperations: UInt64 { lock.withLock { count } }
}
