import Foundation
import LVMoISCSIDriver
import SMCore
import TestContainers
import VHD

/// What the suite asserts about VDIs: their contents read through `VHDChain` (patterns
/// written, hashes compared), the engine's `Check` of every VHD volume, and for containers that
/// inflate, the volume sizes the sizing policy promises.
enum Contents {
    /// Deterministic pseudo-random bytes.
    static func pattern(_ count: Int, seed: UInt64) -> [UInt8] {
        var x = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        return (0..<count).map { _ in x ^= x << 13; x ^= x >> 7; x ^= x << 17; return UInt8(truncatingIfNeeded: x) }
    }

    /// Writes `bytes` at `offset` of VDI `uuid` through its chain (its leaf prepared for
    /// growth first, as activation does) and flushes.
    static func write(_ repo: VHDRepository, _ uuid: String, _ bytes: [UInt8], at offset: UInt64) throws {
        try repo.prepareLeaf(uuid)
        let chain = try VHDChain(path: repo.path(uuid), provider: repo.container.provider, writable: true)
        try chain.write(bytes, at: offset)
        try chain.flush()
    }

    /// `count` bytes at `offset` of VDI `uuid`, read through its chain.
    static func read(_ repo: VHDRepository, _ uuid: String, count: Int, at offset: UInt64) throws -> [UInt8] {
        try VHDChain(path: repo.path(uuid), provider: repo.container.provider).read(count: count, at: offset)
    }

    /// The whole virtual disk of VDI `uuid`, read through its chain.
    static func all(_ repo: VHDRepository, _ uuid: String) throws -> [UInt8] {
        let chain = try VHDChain(path: repo.path(uuid), provider: repo.container.provider)
        return try chain.read(count: Int(chain.virtualSize), at: 0)
    }

    /// Whether bytes `range` of VDI `uuid` all read as zeros (read through its chain in pieces).
    static func isZero(_ repo: VHDRepository, _ uuid: String, _ range: Range<UInt64>) throws -> Bool {
        let chain = try VHDChain(path: repo.path(uuid), provider: repo.container.provider)
        var at = range.lowerBound
        while at < range.upperBound {
            let n = Int(min(8 << 20, range.upperBound - at))
            guard try chain.read(count: n, at: at).allSatisfy({ $0 == 0 }) else { return false }
            at += UInt64(n)
        }
        return true
    }

    /// A hash of the whole virtual disk of VDI `uuid`, read through its chain.
    static func hash(_ repo: VHDRepository, _ uuid: String) throws -> UInt64 { FNV1a.hash(try all(repo, uuid)) }

    /// Seeded writes into VDI `uuid`: whole MiB pieces at places depending on the seed (some
    /// over earlier ones, some across block boundaries) and a few unaligned small ones.
    static func writePattern(_ repo: VHDRepository, _ uuid: String, seed: Int) throws {
        try repo.prepareLeaf(uuid)
        let chain = try VHDChain(path: repo.path(uuid), provider: repo.container.provider, writable: true)
        let mib = UInt64(1 << 20)
        let size = chain.virtualSize
        for i in 0..<4 {
            let at = (UInt64(seed * 3 + i * 5) * mib + UInt64(i) * 512 * 3) % (size - mib)
            try chain.write(pattern(1 << 20, seed: UInt64(seed * 100 + i)), at: at)
        }
        for i in 0..<3 {
            let at = (UInt64(seed * 7919 + i * 104_729) * 4099) % (size - 8192)
            try chain.write(pattern(1000 + i, seed: UInt64(seed * 1000 + i)), at: at)
        }
        try chain.flush()
    }

    /// Problems `Check` finds in every VHD volume of the container.
    static func checkProblems(_ repo: VHDRepository) throws -> [String] {
        var out: [String] = []
        for name in try repo.container.list() where repo.container.naming.vdi(ofVolume: name) != nil {
            for r in Check.run(path: repo.container.path(of: name), provider: repo.container.provider) {
                out += r.problems.map { "\(name): \($0)" }
            }
        }
        return out
    }

    /// For a container that inflates: read-only VHDs (hidden, or with children) deflated to
    /// their data and footer in whole extents; with `leaves`, writable leaves inflated to what
    /// their virtual size can reach. Nothing for other containers.
    static func sizingProblems(_ repo: VHDRepository, leaves: Bool = true) throws -> [String] {
        if let c = repo.container as? LVHDContainer { return try lvhdSizingProblems(repo, c, leaves: leaves) }
        guard let c = repo.container as? ExtentContainer else { return [] }
        var out: [String] = []
        for (uuid, s) in try repo.scan() {
            let image = try repo.image(uuid)
            let have = try c.utilisation(of: repo.volume(uuid))
            if s.readOnly {
                let want = c.roundedToExtents(image.endOfData + 512)
                if have != want { out.append("read-only \(uuid) is \(have) bytes, deflated it would be \(want)") }
            } else if leaves {
                let want = c.roundedToExtents(InflatedSize.of(image, virtualSize: image.virtualSize))
                if have < want { out.append("leaf \(uuid) is \(have) bytes, inflated it would be \(want)") }
            }
        }
        return out
    }

    /// `sizingProblems` for LVHD: read-only VHDs deflated to their data and footer and their LVs
    /// read-only; leaves at least `calcSizeVHDLV` of their virtual size (or what their layout needs).
    static func lvhdSizingProblems(_ repo: VHDRepository, _ c: LVHDContainer, leaves: Bool) throws -> [String] {
        var out: [String] = []
        for (uuid, s) in try repo.scan() {
            let image = try repo.image(uuid)
            let have = try c.utilisation(of: repo.volume(uuid))
            if s.readOnly {
                let want = c.roundedToExtents(LVHDSize.deflated(image))
                if have != want { out.append("read-only \(uuid) is \(have) bytes, deflated it would be \(want)") }
                if try !c.isReadOnly(repo.volume(uuid)) { out.append("read-only \(uuid)'s LV is writable") }
            } else if leaves {
                let want = c.roundedToExtents(LVHDSize.inflated(image, virtualSize: image.virtualSize))
                if have < want { out.append("leaf \(uuid) is \(have) bytes, inflated it would be \(want)") }
            }
        }
        return out
    }

    /// Volumes that are neither VHDs of VDIs nor expected: temporaries, retired leaves, strays;
    /// and journal entries left behind.
    static func leftovers(_ repo: VHDRepository) throws -> [String] {
        let c = repo.container
        var out = try c.list().filter {
            c.naming.vdi(ofVolume: $0) == nil && c.naming.vdi(ofCBTLog: $0) == nil && !$0.hasPrefix(".") && !$0.hasPrefix("lost+found")
        }
        out += try c.journals().keys.map { "journal " + $0 }
        return out.sorted()
    }
}
