import Foundation

/// Lets many writers through at once, or one task alone: the store's writers pass it shared,
/// and sending the uncommitted writes again after a server restart passes it alone, so that
/// no newer write to the same bytes lands before an older one sent again.
final class WriteGate: @unchecked Sendable {
    private let condition = NSCondition()
    private var writers = 0
    private var alone = false

    /// Runs `body` beside other writers (waiting while a task runs alone).
    func shared<T>(_ body: () throws -> T) rethrows -> T {
        condition.withLock {
            while alone { condition.wait() }
            writers += 1
        }
        defer { leave() }
        return try body()
    }

    /// Enters beside other writers without waiting: false while a task runs alone or waits to
    /// (the caller then writes the blocking way, through `shared`). A true answer needs a `leave`.
    func tryEnter() -> Bool {
        condition.withLock {
            guard !alone else { return false }
            writers += 1
            return true
        }
    }

    /// Leaves after `tryEnter` (or `shared`).
    func leave() {
        condition.withLock { writers -= 1; if writers == 0 { condition.broadcast() } }
    }

    /// Runs `body` once no writer is inside, keeping new ones out until it ends.
    func exclusive<T>(_ body: () throws -> T) rethrows -> T {
        condition.withLock {
            while alone { condition.wait() }
            alone = true
            while writers > 0 { condition.wait() }
        }
        defer { condition.withLock { alone = false; condition.broadcast() } }
        return try body()
    }
}
