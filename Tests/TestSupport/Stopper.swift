import Foundation

/// A flag the test sets and writer threads read.
public final class Stopper: @unchecked Sendable {
    private let lock = NSLock()
    private var flag = false
    /// A flag not set yet.
    public init() {}
    /// Whether `stop()` was called.
    public var stopped: Bool { lock.withLock { flag } }
    /// Tells the writers to finish.
    public func stop() { lock.withLock { flag = true } }
}
