#if canImport(Glibc)
import Glibc
#endif

/// VHD timestamps: u32 seconds since 2000-01-01 00:00:00 UTC.
public enum VHDTime {
    /// Unix time of the VHD epoch.
    public static let epoch = 946_684_800

    /// The current time as a VHD timestamp.
    public static func now() -> UInt32 { fromUnix(Int(time(nil))) }

    /// Converts Unix seconds (clamped to the u32 range).
    public static func fromUnix(_ seconds: Int) -> UInt32 {
        UInt32(clamping: max(0, seconds - epoch))
    }

    /// Converts back to Unix seconds.
    public static func toUnix(_ stamp: UInt32) -> Int { Int(stamp) + epoch }
}
