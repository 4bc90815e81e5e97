/// Byte counts as the collector's messages show them: the largest unit that keeps a whole
/// number above zero (`512 B`, `4.0 KiB`, `2.0 MiB`, `1.5 GiB`), so small merges do not read as 0.
public enum ByteCount {
    /// `n` in B, KiB, MiB or GiB with one decimal.
    public static func describe(_ n: UInt64) -> String {
        if n < 1024 { return "\(n) B" }
        let units = ["KiB", "MiB", "GiB", "TiB"]
        var value = Double(n) / 1024
        var unit = 0
        while value >= 1024 && unit < units.count - 1 { value /= 1024; unit += 1 }
        return "\((value * 10).rounded() / 10) \(units[unit])"
    }
}
