/// FNV-1a, 64 bits: the checksum of table slots and journal entries (torn writes, not attacks).
public enum FNV1a {
    /// The hash of `bytes`, continuing from `seed`.
    public static func hash<C: Collection>(_ bytes: C, seed: UInt64 = 0xcbf2_9ce4_8422_2325) -> UInt64 where C.Element == UInt8 {
        var h = seed
        for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        return h
    }
}
