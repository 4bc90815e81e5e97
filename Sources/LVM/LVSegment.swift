/// A linear segment of an LV: `extentCount` logical extents from `startExtent`, on one PV from `pvExtent`.
public struct LVSegment: Equatable, Sendable {
    /// First logical extent covered.
    public var startExtent: UInt64
    /// Length in extents.
    public var extentCount: UInt64
    /// Key of the PV (`pv0`).
    public var pv: String
    /// First physical extent on that PV.
    public var pvExtent: UInt64

    /// A segment.
    public init(startExtent: UInt64, extentCount: UInt64, pv: String, pvExtent: UInt64) {
        self.startExtent = startExtent
        self.extentCount = extentCount
        self.pv = pv
        self.pvExtent = pvExtent
    }

    /// Physical extents used on the PV.
    public var pvExtents: Range<UInt64> { pvExtent..<pvExtent + extentCount }
}
