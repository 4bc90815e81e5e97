import Foundation

/// One piece of work run on another thread while the caller does something else (the next
/// chunk read while the current one is written or sent); `wait` gives its outcome.
final class ReadAhead<Outcome>: @unchecked Sendable {
    private let work: () -> Outcome
    private let group = DispatchGroup()
    private var outcome: Outcome?

    /// Starts `work` at once.
    init(_ work: @escaping () -> Outcome) {
        self.work = work
        group.enter()
        DispatchQueue.global().async { [self] in
            outcome = self.work()
            group.leave()
        }
    }

    /// The work's outcome, once it ended.
    func wait() -> Outcome {
        group.wait()
        return outcome!
    }
}
