/// How the collector works: what it may do, how long it may pause a running disk, how much
/// bandwidth it may take.
public struct GCOptions: Sendable, Equatable {
    /// Longest pause of a running disk for the final leaf merge, in seconds (also the longest the
    /// collector holds the SR lock for one step).
    public var pauseBudget: Double = 2
    /// Cap on merge bandwidth in bytes per second (nil: none).
    public var bandwidthLimit: Double? = nil
    /// Coalesce hidden nodes (SR other_config `coalesce=false` turns it off).
    public var coalesce = true
    /// Coalesce leaves (SR other_config `leaf-coalesce=false` turns it off).
    public var leafCoalesce = true
    /// Leaves never coalesced (VDI other_config `leaf-coalesce=false`, `on_boot=reset`).
    public var leafCoalesceExcluded: Set<String> = []
    /// Leaf size below which a merge is tried without a speed estimate.
    public var leafSizeWithoutEstimate: UInt64 = 20 << 20

    /// Defaults (2 s pause budget, no bandwidth cap, everything enabled).
    public init() {}
}
