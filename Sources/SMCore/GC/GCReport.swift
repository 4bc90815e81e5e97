/// What one run of the collector did.
public struct GCReport: Sendable, Equatable {
    /// Garbage VDIs removed.
    public var removed: [String] = []
    /// Hidden nodes merged into their parents and removed.
    public var coalesced: [String] = []
    /// Leaves merged into their parents (the parent now carries the leaf's uuid).
    public var leafCoalesced: [String] = []
    /// Leaves the collector gave up on this run, with the reason.
    public var gaveUp: [String: String] = [:]
    /// Nodes and leaves not merged for want of free space on the SR, with needed and free bytes.
    public var skippedForSpace: [String: String] = [:]
    /// Journals of an earlier, interrupted run that were finished or rolled back.
    public var recovered: [String] = []
    /// Bytes merged.
    public var bytesMerged: UInt64 = 0
    /// Every pause of a running disk, in seconds.
    public var pauses: [Double] = []
    /// Whether the run stopped because an abort was asked for.
    public var aborted = false
    /// Whether another collector was already running (this one did nothing).
    public var alreadyRunning = false

    /// An empty report.
    public init() {}

    /// Whether nothing was done.
    public var isEmpty: Bool { removed.isEmpty && coalesced.isEmpty && leafCoalesced.isEmpty && recovered.isEmpty }
}
