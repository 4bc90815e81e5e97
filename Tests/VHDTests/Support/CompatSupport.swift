import Foundation
import TestSupport
import Testing
@testable import VHD

// MARK: - Helpers

/// Deterministic sector data of the fixtures' recipes (`pat TAG LBA COUNT`): sector `s` is
/// sha256("TAG:s:0") || ... || sha256("TAG:s:15").
enum Pat {
    static func pat(_ tag: String, _ lba: Int, _ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count * 512)
        out.withUnsafeMutableBytes { dst in
            var o = 0
            for s in lba..<lba + count {
                for k in 0..<16 {
                    ShortSHA256.hash(Array("\(tag):\(s):\(k)".utf8), into: dst.baseAddress! + o)
                    o += 32
                }
            }
        }
        return out
    }
}

/// SHA-256 of messages shorter than 56 bytes (one block), without allocations per round.
enum ShortSHA256 {
    /// The round constants, shared with the streaming hash.
    private static let k = SHA256.roundConstants

    static func hash(_ msg: [UInt8], into out: UnsafeMutableRawPointer) {
        precondition(msg.count < 56)
        withUnsafeTemporaryAllocation(of: UInt32.self, capacity: 64) { w in
            var block = [UInt8](repeating: 0, count: 64)
            for i in 0..<msg.count { block[i] = msg[i] }
            block[msg.count] = 0x80
            let bits = UInt64(msg.count) * 8
            for i in 0..<8 { block[63 - i] = UInt8((bits >> (8 * UInt64(i))) & 0xff) }
            for t in 0..<16 {
                w[t] = UInt32(block[4*t]) << 24 | UInt32(block[4*t+1]) << 16 | UInt32(block[4*t+2]) << 8 | UInt32(block[4*t+3])
            }
            @inline(__always) func rotr(_ x: UInt32, _ n: UInt32) -> UInt32 { (x >> n) | (x << (32 - n)) }
            for t in 16..<64 {
                let s0 = rotr(w[t-15], 7) ^ rotr(w[t-15], 18) ^ (w[t-15] >> 3)
                let s1 = rotr(w[t-2], 17) ^ rotr(w[t-2], 19) ^ (w[t-2] >> 10)
                w[t] = w[t-16] &+ s0 &+ w[t-7] &+ s1
            }
            let h0: (UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32) =
                (0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19)
            var (a, b, c, d, e, f, g, h) = h0
            for t in 0..<64 {
                let t1 = h &+ (rotr(e, 6) ^ rotr(e, 11) ^ rotr(e, 25)) &+ ((e & f) ^ (~e & g)) &+ k[t] &+ w[t]
                let t2 = (rotr(a, 2) ^ rotr(a, 13) ^ rotr(a, 22)) &+ ((a & b) ^ (a & c) ^ (b & c))
                h = g; g = f; f = e; e = d &+ t1; d = c; c = b; b = a; a = t1 &+ t2
            }
            let r = [h0.0 &+ a, h0.1 &+ b, h0.2 &+ c, h0.3 &+ d, h0.4 &+ e, h0.5 &+ f, h0.6 &+ g, h0.7 &+ h]
            let p = out.assumingMemoryBound(to: UInt8.self)
            for i in 0..<8 {
                p[4*i] = UInt8(r[i] >> 24); p[4*i+1] = UInt8((r[i] >> 16) & 0xff)
                p[4*i+2] = UInt8((r[i] >> 8) & 0xff); p[4*i+3] = UInt8(r[i] & 0xff)
            }
        }
    }
}

/// A chain's content compared with a manifest `content` entry range by range: listed 1 MiB
/// ranges by hash, every other range must be all zeros (cheap for large sparse disks).
enum ContentCheck {
    static func mismatches(_ chain: VHDChain, _ content: [String: Any]) throws -> [String] {
        var bad: [String] = []
        if let size = content["size"] as? Int, UInt64(size) != chain.virtualSize { bad.append("size \(chain.virtualSize) != \(size)") }
        let ranges = content["nonzero_ranges"] as? [String: String] ?? [:]
        var off: UInt64 = 0
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)
        defer { buffer.deallocate() }
        while off < chain.virtualSize {
            let n = Int(min(1 << 20, chain.virtualSize - off))
            let part = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<n])
            try chain.read(into: part, at: off)
            if let want = ranges[String(off)] {
                var h = SHA256(); h.update(UnsafeRawBufferPointer(part))
                if h.finalize() != want { bad.append("range \(off)") }
            } else if !Convert.isZero(UnsafeRawBufferPointer(part)) {
                bad.append("range \(off) not zero")
            }
            off += UInt64(n)
        }
        return bad
    }
}

/// Whole-file byte helpers.
enum TestBytes {
    static func file(_ path: String) -> [UInt8] {
        guard let d = FileManager.default.contents(atPath: path) else { return [] }
        return [UInt8](d)
    }

    static func write(_ bytes: [UInt8], to path: String) {
        _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
    }

    static func allZero(_ s: ArraySlice<UInt8>) -> Bool { s.allSatisfy { $0 == 0 } }

    /// Footer timestamp and checksum (and uuid) of the copy at EOF-512 and, with `backup`, at 0.
    static func footerVolatile(size: Int, uuid: Bool, backup: Bool) -> [Range<Int>] {
        var bases = [size - 512]
        if backup { bases.append(0) }
        return bases.flatMap { o in [o + 24..<o + 28, o + 64..<o + (uuid ? 84 : 68)] }
    }

    /// Offsets where `a` and `b` differ outside `allowed` (and every offset past the shorter one).
    static func differences(_ a: [UInt8], _ b: [UInt8], allowed: [Range<Int>]) -> [Int] {
        var out: [Int] = []
        let n = min(a.count, b.count)
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                var i = 0
                while i < n {
                    // Compare 4 KiB at a time; look closer only where they differ.
                    let m = min(4096, n - i)
                    if memcmp(pa.baseAddress! + i, pb.baseAddress! + i, m) != 0 {
                        for j in i..<i + m where pa[j] != pb[j] && !allowed.contains(where: { $0.contains(j) }) { out.append(j) }
                    }
                    i += m
                }
            }
        }
        if a.count != b.count { out.append(n) }
        return out
    }

    static func describe<S: Sequence>(_ offsets: S) -> String where S.Element == Int {
        offsets.map { "\($0) (0x\(String($0, radix: 16)))" }.joined(separator: ", ")
    }
}

/// Runs the fixtures' recipe commands with the engine instead of vhd-util / vhdio.
enum RecipeReplay {
    static func run(_ command: String, in dir: String, uuid: VHDUUID, provider: FileStoreProvider) throws {
        let w = command.split(separator: " ").map(String.init)
        func arg(_ flag: String) -> String? { w.firstIndex(of: flag).map { w[$0 + 1] } }
        if w.starts(with: ["vhd-util", "create"]) {
            let path = dir + "/" + arg("-n")!
            let size = UInt64(arg("-s")!)! << 20
            if w.contains("-r") {
                try Create.fixed(at: path, size: size, provider: provider, uuid: uuid)
            } else {
                let limit = arg("-S").map { UInt64($0)! << 20 } ?? 0
                try Create.dynamic(at: path, size: size, fastResizeLimit: limit, provider: provider, uuid: uuid)
            }
        } else if w.starts(with: ["vhd-util", "snapshot"]) {
            var o = Snapshot.Options()
            o.rawParent = w.contains("-m")
            try Snapshot.create(child: dir + "/" + arg("-n")!, parent: dir + "/" + arg("-p")!, provider: provider,
                                options: o, uuid: uuid)
        } else if w.first == "pat", w.count == 9, w[4] == "|", w[5] == "vhdio", w[6] == "write" {
            let data = Pat.pat(w[1], Int(w[2])!, Int(w[3])!)
            let chain = try VHDChain(path: dir + "/" + w[7], provider: provider, writable: true)
            try chain.write(data, at: UInt64(w[8])! * 512)
            try chain.flush()
        } else if w.starts(with: ["vhd-util", "set"]), arg("-f") == "hidden" {
            let path = dir + "/" + arg("-n")!
            let image = try VHDImage(store: provider.open(path, writable: true), path: path, writable: true)
            try image.updateFooter { $0.hidden = UInt8(arg("-v")!)! }
        } else if w.starts(with: ["vhd-util", "resize"]) {
            let path = dir + "/" + arg("-n")!
            try Resize.run(path: path, size: UInt64(arg("-s")!)! << 20, provider: provider, fastOnly: w.contains("-f"),
                           journal: arg("-j").map { StoreJournal(path: dir + "/" + $0, provider: provider) })
        } else {
            Issue.record("cannot replay: \(command)")
        }
    }
}

extension Array where Element == Check.Report {
    /// Whether every report is clean.
    var allValid: Bool { allSatisfy { $0.valid } }
    /// Every problem of every report.
    var allProblems: [String] { flatMap { $0.problems } }
}
