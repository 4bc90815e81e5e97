import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// XenAPI date-times in their wire form, `YYYYMMDDTHH:MM:SSZ` (UTC).
public enum XenAPIDateTime {
    /// The epoch, which the Python SM uses for "no snapshot time": `19700101T00:00:00Z`.
    public static let epoch = "19700101T00:00:00Z"

    /// `date` in XenAPI's wire form, to the second, in UTC.
    public static func string(from date: Date) -> String {
        var seconds = time_t(date.timeIntervalSince1970.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(format: "%04d%02d%02dT%02d:%02d:%02dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1,
                      Int(parts.tm_mday), Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec))
    }
}
