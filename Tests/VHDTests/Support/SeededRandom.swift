/// SplitMix64 (Steele, Lea, Flood 2014): a tiny deterministic generator, so that a failing
/// property-test seed replays exactly the same operations on every machine.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    /// A generator whose sequence is fixed by `seed`.
    init(seed: UInt64) { state = seed }

    /// The next 64 random bits.
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform integer in `range` (which must not be empty).
    mutating func int(_ range: Range<Int>) -> Int {
        precondition(!range.isEmpty, "empty range")
        return range.lowerBound + Int(next() % UInt64(range.count))
    }

    /// A uniform integer in `range`.
    mutating func int(_ range: ClosedRange<Int>) -> Int { int(range.lowerBound..<range.upperBound + 1) }

    /// True with probability `p`.
    mutating func chance(_ p: Double) -> Bool { Double(next() >> 11) / Double(1 << 53) < p }

    /// An element of `items`.
    mutating func pick<T>(_ items: [T]) -> T { items[int(0..<items.count)] }

    /// `count` random bytes (eight at a time).
    mutating func bytes(_ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        out.withUnsafeMutableBytes { p in
            var i = 0
            while i + 8 <= count {
                p.storeBytes(of: next(), toByteOffset: i, as: UInt64.self)
                i += 8
            }
            if i < count {
                var v = next()
                while i < count { p[i] = UInt8(truncatingIfNeeded: v); v >>= 8; i += 1 }
            }
        }
        return out
    }
}
