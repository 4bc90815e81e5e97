/// Whether repeated snapshot-and-coalesce rounds on a live leaf are getting anywhere (reference
/// §4.5): each round records the leaf's size left to merge; the tracker gives up when there have
/// been too many rounds, when the size has not shrunk for several rounds, or when it keeps
/// growing well past the smallest size seen — the leaf is written faster than it can be merged.
public struct CoalesceTracker: Sendable {
    /// Rounds before any verdict.
    public static let minimumRounds = 3
    /// Most rounds.
    public static let maxRounds = 10
    /// Most rounds without progress.
    public static let maxRoundsWithoutProgress = 3
    /// Growth over the minimum that counts as falling behind.
    public static let maxIncreaseFromMinimum = 1.2
    /// Rounds allowed above that growth.
    public static let graceRounds = 2

    /// Sizes recorded, in order.
    public private(set) var sizes: [UInt64] = []
    var withoutProgress = 0
    var overMinimum = 0

    /// A fresh tracker.
    public init() {}

    /// Records the size left after a round; returns nil to go on, or why to give up.
    public mutating func record(_ size: UInt64) -> String? {
        let previous = sizes
        sizes.append(size)
        if sizes.count > Self.maxRounds { return "\(sizes.count - 1) rounds without getting under the pause budget" }
        guard let last = previous.last else { return nil }
        let average = Double(previous.reduce(0, +)) / Double(previous.count)
        if size < last || Double(size) < average { withoutProgress = 0 } else { withoutProgress += 1 }
        let minimum = previous.min() ?? size
        if Double(size) > Double(minimum) * Self.maxIncreaseFromMinimum { overMinimum += 1 }
        guard sizes.count > Self.minimumRounds else { return nil }
        if withoutProgress > Self.maxRoundsWithoutProgress { return "no progress in \(withoutProgress) rounds" }
        if overMinimum > Self.graceRounds { return "the leaf grows faster than it is merged" }
        return nil
    }
}
