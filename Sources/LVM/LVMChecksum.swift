/// lvm2's CRC-32: the reflected zlib polynomial, seeded with `0xf597a6cf`, without final inversion.
public enum LVMChecksum {
    /// The seed every on-disk checksum starts from.
    public static let initial: UInt32 = 0xf597_a6cf

    /// The 256-entry table of the reflected polynomial 0xEDB88320.
    static let table: [UInt32] = (0..<256).map { i in
        var c = UInt32(i)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xedb8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    /// The checksum of `bytes`, continuing from `crc`.
    public static func compute(_ bytes: UnsafeRawBufferPointer, continuing crc: UInt32 = initial) -> UInt32 {
        var c = crc
        table.withUnsafeBufferPointer { t in
            for b in bytes { c = t[Int((c ^ UInt32(b)) & 0xff)] ^ (c >> 8) }
        }
        return c
    }

    /// The checksum of `bytes[range]`.
    public static func compute(_ bytes: [UInt8], _ range: Range<Int>? = nil, continuing crc: UInt32 = initial) -> UInt32 {
        bytes.withUnsafeBytes { raw in
            let r = range ?? 0..<raw.count
            return compute(UnsafeRawBufferPointer(rebasing: raw[r]), continuing: crc)
        }
    }
}
