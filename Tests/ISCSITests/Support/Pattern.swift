import Foundation

/// Deterministic test data: block `n` of a stream is a function of `n` and a seed.
enum Pattern {
    /// `count` bytes, different for every `(seed, n)`.
    static func bytes(_ count: Int, seed: UInt64, n: UInt64 = 0) -> [UInt8] {
        var x = seed &* 0x9E37_79B9_7F4A_7C15 &+ n &* 0xBF58_476D_1CE4_E5B9 | 1
        var out = [UInt8](repeating: 0, count: count)
        out.withUnsafeMutableBytes { b in
            var i = 0
            while i < count {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17
                var v = x
                let n = min(8, count - i)
                withUnsafeBytes(of: &v) { b.baseAddress!.advanced(by: i).copyMemory(from: $0.baseAddress!, byteCount: n) }
                i += n
            }
        }
        return out
    }

    /// `count` bytes of `path` at `offset`, read directly from the file.
    static func fileBytes(_ path: String, offset: UInt64, count: Int) throws -> [UInt8] {
        guard let h = FileHandle(forReadingAtPath: path) else { throw TestFailure("cannot open \(path)") }
        defer { try? h.close() }
        try h.seek(toOffset: offset)
        let d = try h.read(upToCount: count) ?? Data()
        return [UInt8](d)
    }
}
