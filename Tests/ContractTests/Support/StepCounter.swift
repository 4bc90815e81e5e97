import Foundation

/// Counts the steps an operation takes (each completed write or resize of a store opened
/// through the container's provider, and each completed change of the container itself) and
/// ends the process with status 203, as a crash would, right after step `crashAfter`.
final class StepCounter: @unchecked Sendable {
    /// The step after which the process dies (nil: never).
    let crashAfter: Int?
    /// Steps completed so far.
    private(set) var steps = 0

    init(crashAfter: Int?) { self.crashAfter = crashAfter }

    /// One more step done.
    func step() {
        steps += 1
        if let k = crashAfter, steps >= k { _exit(203) }
    }
}
