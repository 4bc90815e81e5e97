/// Cylinder/head/sector geometry stored in the footer; informational, derived from the size.
public struct Geometry: Equatable, Sendable {
    /// Cylinders.
    public var cylinders: UInt16
    /// Heads.
    public var heads: UInt8
    /// Sectors per track.
    public var sectorsPerTrack: UInt8

    /// Creates a geometry from its three fields.
    public init(cylinders: UInt16, heads: UInt8, sectorsPerTrack: UInt8) {
        self.cylinders = cylinders; self.heads = heads; self.sectorsPerTrack = sectorsPerTrack
    }

    /// The packed form `cyl << 16 | heads << 8 | spt`, which `vhd-util check` compares.
    public var packed: UInt32 { UInt32(cylinders) << 16 | UInt32(heads) << 8 | UInt32(sectorsPerTrack) }

    /// Bytes addressed by this geometry.
    public var capacity: UInt64 { UInt64(cylinders) * UInt64(heads) * UInt64(sectorsPerTrack) * 512 }

    /// The specification's CHS algorithm (rounds down), as blktap computes it for a size.
    public static func forSize(_ size: UInt64) -> Geometry {
        var secs = size / 512 + (size % 512 == 0 ? 0 : 1)
        secs = min(secs, 65535 * 16 * 255)
        var spt: UInt64, heads: UInt64, cth: UInt64
        if secs >= 65535 * 16 * 63 {
            spt = 255; heads = 16; cth = secs / spt
        } else {
            spt = 17; cth = secs / spt
            heads = max(4, (cth + 1023) / 1024)
            if cth >= heads * 1024 || heads > 16 { spt = 31; heads = 16; cth = secs / spt }
            if cth >= heads * 1024 { spt = 63; heads = 16; cth = secs / spt }
        }
        return Geometry(cylinders: UInt16(truncatingIfNeeded: cth / heads), heads: UInt8(heads), sectorsPerTrack: UInt8(spt))
    }
}
