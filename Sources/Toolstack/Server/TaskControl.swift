import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The cancellation state of one running `Async.` task: whether a cancel was asked, whether its
/// work has started, and the plugin process it runs now when killing that is safe.
final class TaskControl: @unchecked Sendable {
    /// What a cancel request found.
    enum Request {
        /// The work had not started: it never will.
        case notStarted
        /// A plugin that may be killed was running: it was killed.
        case killed
        /// The work runs on; it stops at its next safe point (or completes).
        case atNextSafePoint
    }

    private let lock = NSLock()
    private var cancelled = false
    private var started = false
    private var killable: pid_t?

    /// Whether a cancel was asked.
    var isCancelled: Bool { locked(lock) { cancelled } }

    /// Marks the work started; false when it was cancelled first (it must not run).
    func start() -> Bool {
        locked(lock) {
            guard !cancelled else { return false }
            started = true
            return true
        }
    }

    /// Asks for cancellation.
    func cancel() -> Request {
        locked(lock) {
            cancelled = true
            guard started else { return .notStarted }
            if let pid = killable {
                kill(-pid, SIGKILL)   // its whole process group
                return .killed
            }
            return .atNextSafePoint
        }
    }

    /// Records `pid` (a process group leader) as safe to kill until `endKillable`; kills it at
    /// once when a cancel already came.
    func beginKillable(_ pid: pid_t) {
        locked(lock) {
            killable = pid
            if cancelled { kill(-pid, SIGKILL) }
        }
    }

    /// The killable process ended.
    func endKillable() { locked(lock) { killable = nil } }
}
