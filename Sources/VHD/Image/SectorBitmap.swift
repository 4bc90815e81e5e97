/// Operations on VHD sector bitmaps: one bit per 512-byte sector, most significant bit first.
public enum SectorBitmap {
    /// Whether sector `i` is marked present.
    @inlinable static func test(_ map: [UInt8], _ i: Int) -> Bool { map[i >> 3] & (0x80 >> UInt8(i & 7)) != 0 }

    /// Marks sectors `range` present; returns whether anything changed.
    static func set(_ map: inout [UInt8], _ range: Range<Int>) -> Bool {
        var changed = false
        var i = range.lowerBound
        while i < range.upperBound {
            if i & 7 == 0 && i + 8 <= range.upperBound {
                if map[i >> 3] != 0xff { map[i >> 3] = 0xff; changed = true }
                i += 8
            } else {
                let m = UInt8(0x80) >> UInt8(i & 7)
                if map[i >> 3] & m == 0 { map[i >> 3] |= m; changed = true }
                i += 1
            }
        }
        return changed
    }

    /// Whether the first `count` bits are all set.
    static func isFull(_ map: [UInt8], count: Int) -> Bool {
        let whole = count >> 3
        for i in 0..<whole where map[i] != 0xff { return false }
        let rest = count & 7
        if rest > 0 {
            let m = UInt8(0xff) << UInt8(8 - rest)
            return map[whole] & m == m
        }
        return true
    }

    /// Whether no bit below `count` is set.
    static func isEmpty(_ map: [UInt8], count: Int) -> Bool {
        let whole = count >> 3
        for i in 0..<whole where map[i] != 0 { return false }
        for i in (whole << 3)..<count where test(map, i) { return false }
        return true
    }

    /// Calls `body(start, length, present)` for each maximal run in `range`.
    public static func forEachRun(_ map: [UInt8], in range: Range<Int>, _ body: (Int, Int, Bool) throws -> Void) rethrows {
        var start = range.lowerBound
        guard start < range.upperBound else { return }
        var state = test(map, start)
        var i = start + 1
        while i < range.upperBound {
            // Skip whole bytes that match the current state.
            if i & 7 == 0 && i + 8 <= range.upperBound && map[i >> 3] == (state ? 0xff : 0) {
                i += 8; continue
            }
            let bit = test(map, i)
            if bit != state {
                try body(start, i - start, state)
                start = i; state = bit
            }
            i += 1
        }
        try body(start, range.upperBound - start, state)
    }

    /// Number of set bits below `count`.
    static func population(_ map: [UInt8], count: Int) -> Int {
        var n = 0
        for i in 0..<(count >> 3) { n += map[i].nonzeroBitCount }
        for i in ((count >> 3) << 3)..<count where test(map, i) { n += 1 }
        return n
    }
}
