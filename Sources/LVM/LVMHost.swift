#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// This host's name and clock, as lvm2 records them in `creation_host` and `creation_time`.
public enum LVMHost {
    /// The host name (`gethostname`), or "localhost".
    public static var name: String {
        var buf = [CChar](repeating: 0, count: 256)
        guard gethostname(&buf, buf.count - 1) == 0 else { return "localhost" }
        let s = String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return s.isEmpty ? "localhost" : s
    }

    /// Seconds since the Unix epoch.
    public static func now() -> Int64 { Int64(time(nil)) }
}
