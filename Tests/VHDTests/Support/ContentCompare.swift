#if canImport(Glibc)
import Glibc
#endif
@testable import VHD

/// A failed expectation inside a multi-step test: thrown to stop the case at the first problem
/// (later steps would only repeat it) with a message naming seed, step and operation.
struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Throws `TestFailure(message)` unless `condition` holds.
func ensure(_ condition: Bool, _ message: @autoclosure () -> String) throws {
    if !condition { throw TestFailure(message()) }
}

/// Byte and sector comparisons of virtual-disk contents.
enum Content {
    /// Offset of the first byte where `a` and `b` differ (or the shorter length), nil if equal.
    static func firstDifference(_ a: [UInt8], _ b: [UInt8]) -> Int? {
        if equal(a, b) { return nil }
        let n = min(a.count, b.count)
        return a.withUnsafeBytes { pa in
            b.withUnsafeBytes { pb in
                var i = 0
                // Whole sectors first, then bytes.
                while i + 512 <= n && memcmp512(pa, pb, i) { i += 512 }
                while i < n && pa[i] == pb[i] { i += 1 }
                return i
            }
        }
    }

    /// Whether `a` and `b` hold the same bytes (memcmp: `==` on arrays goes byte by byte).
    static func equal(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        guard !a.isEmpty else { return true }
        return a.withUnsafeBytes { pa in b.withUnsafeBytes { pb in memcmp(pa.baseAddress!, pb.baseAddress!, a.count) == 0 } }
    }

    /// Whether `a` holds exactly the bytes of `b`.
    static func equal(_ a: UnsafeRawBufferPointer, _ b: ArraySlice<UInt8>) -> Bool {
        guard a.count == b.count else { return false }
        guard !a.isEmpty else { return true }
        return b.withUnsafeBytes { pb in memcmp(a.baseAddress!, pb.baseAddress!, a.count) == 0 }
    }

    private static func memcmp512(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer, _ at: Int) -> Bool {
        memcmp(a.baseAddress! + at, b.baseAddress! + at, 512) == 0
    }

    /// A short description of how `actual` differs from `expected`, nil if equal.
    static func mismatch(_ actual: [UInt8], _ expected: [UInt8]) -> String? {
        guard let at = firstDifference(actual, expected) else { return nil }
        if actual.count != expected.count && at == min(actual.count, expected.count) {
            return "length \(actual.count), expected \(expected.count)"
        }
        return "first difference at byte \(at) (sector \(at / 512), block \(at >> 21)): got 0x\(String(actual[at], radix: 16)), "
            + "expected 0x\(String(expected[at], radix: 16)) (lengths \(actual.count)/\(expected.count))"
    }

    /// Whether sector `s` of `a` equals sector `s` of `b` (missing bytes count as zeros).
    static func sectorEqual(_ a: [UInt8], _ b: [UInt8], _ s: Int) -> Bool {
        let lo = s * 512
        for i in lo..<lo + 512 {
            let x = i < a.count ? a[i] : 0, y = i < b.count ? b[i] : 0
            if x != y { return false }
        }
        return true
    }

    /// The first sector of `actual` that equals neither `a` nor `b` at that sector, nil if none.
    /// (Sectors are compared whole: the engine writes whole sectors, so a crash may leave each one
    /// old or new, never a mix.)
    static func firstSectorMatchingNeither(_ actual: [UInt8], _ a: [UInt8], _ b: [UInt8]) -> Int? {
        let sectors = (actual.count + 511) / 512
        for s in 0..<sectors {
            if fastSectorEqual(actual, a, s) || fastSectorEqual(actual, b, s) { continue }
            return s
        }
        return nil
    }

    private static func fastSectorEqual(_ a: [UInt8], _ b: [UInt8], _ s: Int) -> Bool {
        let lo = s * 512
        if lo + 512 <= a.count && lo + 512 <= b.count {
            return a.withUnsafeBytes { pa in b.withUnsafeBytes { pb in memcmp512(pa, pb, lo) } }
        }
        return sectorEqual(a, b, s)
    }

    /// Whether every byte is zero.
    static func isZero(_ a: [UInt8]) -> Bool { a.withUnsafeBytes { Convert.isZero($0) } }

    /// `bytes` zero-extended (or cut) to `count`.
    static func resized(_ bytes: [UInt8], to count: Int) -> [UInt8] {
        if bytes.count >= count { return Array(bytes[0..<count]) }
        return bytes + [UInt8](repeating: 0, count: count - bytes.count)
    }
}

/// Whether two namespaces hold the same stores with the same bytes.
func sameStores(_ a: [String: [UInt8]], _ b: [String: [UInt8]]) -> Bool {
    a.count == b.count && a.allSatisfy { k, v in b[k].map { Content.equal($0, v) } ?? false }
}

/// Whether `a` is present and holds exactly `b`.
func sameBytes(_ a: [UInt8]?, _ b: [UInt8]?) -> Bool {
    guard let a, let b else { return a == nil && b == nil }
    return Content.equal(a, b)
}
