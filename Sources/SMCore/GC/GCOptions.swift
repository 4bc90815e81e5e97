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
    /// Free bytes a merge must leave on the SR at the least (file system overhead, guests' writes).
    public var minimumSpaceMargin: UInt64 = 32 << 20
    /// Share of the SR's size a merge must leave free, when more than `minimumSpaceMargin`.
    public var spaceMarginFraction = 0.01

    /// The free bytes a merge must leave on an SR of `size` bytes.
    public func spaceMargin(srSize size: UInt64) -> UInt64 {
        max(minimumSpaceMargin, UInt64(Double(size) * max(spaceMarginFraction, 0)))
    }

    /// Defaults (2 s pause budget, no bandwidth cap, everything enabled, 32 MiB or 1 % of the SR left free).
    public init() {}
}
