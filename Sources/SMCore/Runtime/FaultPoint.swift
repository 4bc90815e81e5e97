import Foundation

/// Crash injection for tests: when `SWIFTSM_FAULT` names a step, the process exits at that step
/// (status 203, as the Python SM's fist points), leaving the SR as a crash would.
public enum FaultPoint {
    /// The step named by the environment, read once.
    static let armed: String? = ProcessInfo.processInfo.environment["SWIFTSM_FAULT"]

    /// Exits immediately if `step` is armed.
    public static func hit(_ step: String) {
        if armed == step { _exit(203) }
    }
}
