import ArgumentParser
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import VHD

/// The benchmark helper's root command.
struct VHDBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vhd-bench",
        abstract: "Make VHD benchmark inputs and time in-process VHD operations (see bench/run.sh).",
        subcommands: [FillHalfCommand.self, FillSparseCommand.self, MakeVHDsCommand.self,
                      TimeSnapshotCommand.self, TimeScanCommand.self])

    /// Runs `body`, printing engine errors and exiting non-zero on failure.
    static func guarded(_ body: () throws -> Void) throws {
        do {
            try body()
        } catch let e as VHDError {
            FileHandle.standardError.write(Data("vhd-bench: \(e.description)\n".utf8))
            throw ExitCode(1)
        }
    }
}

/// xoshiro256** seeded through SplitMix64: fast, reproducible random data and choices.
struct BenchRandom {
    private var s: (UInt64, UInt64, UInt64, UInt64)

    /// A generator whose whole output follows from `seed`.
    init(seed: UInt64) {
        var x = seed
        func splitmix() -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s = (splitmix(), splitmix(), splitmix(), splitmix())
    }

    /// The next 64 random bits.
    @inline(__always) mutating func next() -> UInt64 {
        let result = ((s.1 &* 5) << 7 | (s.1 &* 5) >> 57) &* 9
        let t = s.1 << 17
        s.2 ^= s.0; s.3 ^= s.1; s.1 ^= s.2; s.0 ^= s.3
        s.2 ^= t
        s.3 = s.3 << 45 | s.3 >> 19
        return result
    }

    /// A uniform integer in `0..<bound` (bound > 0).
    mutating func below(_ bound: Int) -> Int {
        precondition(bound > 0)
        let b = UInt64(bound)
        let limit = UInt64.max - UInt64.max % b
        while true {
            let v = next()
            if v < limit { return Int(v % b) }
        }
    }

    /// Fills `buffer` with random bytes (its length a multiple of 8).
    mutating func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        precondition(buffer.count % 8 == 0)
        let words = buffer.bindMemory(to: UInt64.self)
        for i in 0..<words.count { words[i] = next() }
    }

    /// `k` distinct values of `0..<n`, sorted (partial Fisher-Yates).
    mutating func choose(_ k: Int, of n: Int) -> [Int] {
        precondition(k <= n)
        var pool = Array(0..<n)
        for i in 0..<k { pool.swapAt(i, i + below(n - i)) }
        return pool[0..<k].sorted()
    }
}

/// Wall-clock timing and order statistics for in-process measurements.
enum Timing {
    /// Seconds taken by `body`.
    static func seconds(_ body: () throws -> Void) rethrows -> Double {
        let clock = ContinuousClock()
        let start = clock.now
        try body()
        let d = clock.now - start
        return Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
    }

    /// The value at quantile `q` (0...1) of sorted `values`, interpolated; the median for 0.5.
    static func quantile(_ sorted: [Double], _ q: Double) -> Double {
        guard !sorted.isEmpty else { return .nan }
        let pos = q * Double(sorted.count - 1)
        let lo = Int(pos.rounded(.down)), hi = Int(pos.rounded(.up))
        return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - Double(lo))
    }

    /// One line of `key=value` statistics in milliseconds, for bench/run.sh to parse.
    static func summary(_ samples: [Double], extra: String = "") -> String {
        let s = samples.sorted()
        func ms(_ v: Double) -> String { String(format: "%.3f", v * 1000) }
        var line = "n=\(s.count) median_ms=\(ms(quantile(s, 0.5))) min_ms=\(ms(s.first ?? .nan))"
        line += " p10_ms=\(ms(quantile(s, 0.1))) p90_ms=\(ms(quantile(s, 0.9))) max_ms=\(ms(s.last ?? .nan))"
        return extra.isEmpty ? line : line + " " + extra
    }
}

/// Blocks to fill: exactly `count` if given, else each block with probability `percent`.
func pickBlocks(total: Int, count: Int?, percent: Double, rng: inout BenchRandom) throws -> [Int] {
    if let k = count {
        guard k >= 0, k <= total else { throw ValidationError("--blocks \(k) is outside 0...\(total)") }
        return rng.choose(k, of: total)
    }
    guard percent >= 0, percent <= 100 else { throw ValidationError("--percent must be in 0...100") }
    return (0..<total).filter { _ in Double(rng.next() >> 11) / Double(1 << 53) < percent / 100 }
}
