import Foundation
@testable import SMCore
import Testing
import VHD

/// NBD TRIM punches holes in the leaf file: the leaf's sectors in whole pages of the range read
/// as zeros afterwards (through NBD, fast paths included, and through the engine), sectors the
/// leaf does not hold still read from the parent, edges keep their data, the file gives space
/// back, the parent file and all metadata are untouched, and read-only exports refuse it.
@Suite struct TrimTests {
    static let mib = 1 << 20

    /// A chain over a base holding `[0, 6 MiB)`: the leaf holds block 0 whole, 64 KiB of block 2
    /// at 4 MiB + 8 KiB, and block 3 whole; block 1 only in the base.
    struct Layered {
        let leaf: String
        let base: String
        var model: [UInt8]
        let leafHeld: [Range<Int>]

        init(_ s: Scratch) throws {
            base = try s.dynamicVHD("base.vhd", mib: 8)
            var model = [UInt8](repeating: 0, count: 8 * TrimTests.mib)
            let a = pattern(6 * TrimTests.mib, seed: 91)
            try s.write(base, a, at: 0)
            model.replaceSubrange(0..<a.count, with: a)
            leaf = s.path + "/leaf.vhd"
            try Snapshot.create(child: leaf, parent: base, provider: s.provider)
            leafHeld = [0..<(2 * TrimTests.mib), (4 * TrimTests.mib + 8192)..<(4 * TrimTests.mib + 8192 + 65536),
                        (6 * TrimTests.mib)..<(8 * TrimTests.mib)]
            for (i, r) in leafHeld.enumerated() {
                let d = pattern(r.count, seed: UInt64(92 + i))
                try s.write(leaf, d, at: UInt64(r.lowerBound))
                model.replaceSubrange(r, with: d)
            }
            self.model = model
        }

        /// What a TRIM of `[offset, offset+length)` leaves: the leaf's sectors in whole 4 KiB
        /// pages of the range read zeros (the leaf's data areas are page-aligned in its file).
        mutating func trim(_ offset: Int, _ length: Int) {
            let pages = (offset + 4095) / 4096 * 4096..<(offset + length) / 4096 * 4096
            for r in leafHeld where r.overlaps(pages) {
                let z = r.clamped(to: pages)
                model.replaceSubrange(z, with: repeatElement(0, count: z.count))
            }
        }
    }

    static func allocatedSectors(_ path: String) -> Int {
        var st = stat()
        guard stat(path, &st) == 0 else { return -1 }
        return Int(st.st_blocks)
    }

    /// Reads `length` bytes at `offset` (structured replies).
    func read(_ c: RawNBDClient, cookie: UInt64, offset: Int, length: Int) -> [UInt8]? {
        c.request(NBD.Command.read, cookie: cookie, offset: UInt64(offset), length: UInt32(length))
        guard let r = c.reply(), r.cookie == cookie, r.error == 0 else { return nil }
        return Array(r.payload.dropFirst(8))
    }

    /// Sends a TRIM and returns its error (nil when no reply came).
    func trim(_ c: RawNBDClient, cookie: UInt64, offset: Int, length: Int, flags: UInt16 = 0) -> UInt32? {
        c.request(NBD.Command.trim, flags: flags, cookie: cookie, offset: UInt64(offset), length: UInt32(length))
        guard let r = c.reply(), r.cookie == cookie else { return nil }
        return r.error
    }

    /// Sends a WRITE_ZEROES and returns its error (nil when no reply came).
    func writeZeroes(_ c: RawNBDClient, cookie: UInt64, offset: Int, length: Int, flags: UInt16 = 0) -> UInt32? {
        c.request(NBD.Command.writeZeroes, flags: flags, cookie: cookie, offset: UInt64(offset), length: UInt32(length))
        guard let r = c.reply(), r.cookie == cookie else { return nil }
        return r.error
    }

    @Test func writeZeroesPunchesUnlessNoHole() throws {
        let s = try Scratch(); defer { s.remove() }
        var l = try Layered(s)
        let baseBefore = try Data(contentsOf: URL(fileURLWithPath: l.base))
        let dp = try LocalDatapath(s, leaf: l.leaf); defer { dp.stop() }
        let c = try RawNBDClient(dp.directory.nbdSocket)
        #expect(try c.negotiate(dp.export) == UInt64(8 * Self.mib))
        #expect(read(c, cookie: 1, offset: 0, length: 8 * Self.mib) == l.model)
        let zero = { (r: Range<Int>) in l.model.replaceSubrange(r, with: repeatElement(0, count: r.count)) }
        // Leaf data (block 0), unaligned: zeros everywhere in the range, the whole pages freed.
        let before = Self.allocatedSectors(l.leaf)
        #expect(writeZeroes(c, cookie: 2, offset: 4096 + 100, length: Self.mib) == 0)
        zero((4096 + 100)..<(4096 + 100 + Self.mib))
        let afterPunch = Self.allocatedSectors(l.leaf)
        #expect(before - afterPunch >= (Self.mib - 8192) / 512, "\(before) -> \(afterPunch)")
        // Parent-only data (block 1): the leaf must now shadow it with zeros, not show the parent.
        #expect(writeZeroes(c, cookie: 3, offset: 2 * Self.mib + 65536, length: 256 << 10) == 0)
        zero((2 * Self.mib + 65536)..<(2 * Self.mib + 65536 + (256 << 10)))
        // NO_HOLE on leaf data (block 3): zeros, and the space stays allocated.
        let beforeNoHole = Self.allocatedSectors(l.leaf)
        #expect(writeZeroes(c, cookie: 4, offset: 6 * Self.mib, length: Self.mib, flags: NBD.CommandFlag.noHole) == 0)
        zero((6 * Self.mib)..<(7 * Self.mib))
        #expect(Self.allocatedSectors(l.leaf) >= beforeNoHole)
        #expect(read(c, cookie: 5, offset: 0, length: 8 * Self.mib) == l.model)
        #expect(try dp.control.stats().writeZeroes == 3)
        dp.stop()
        #expect(try s.read(l.leaf, count: 8 * Self.mib, at: 0) == l.model)
        #expect(try Data(contentsOf: URL(fileURLWithPath: l.base)) == baseBefore)
        #expect(s.problems(l.leaf).isEmpty)
    }

    @Test func trimPunchesTheLeafWithAndWithoutFUA() throws {
        let s = try Scratch(); defer { s.remove() }
        var l = try Layered(s)
        let baseBefore = try Data(contentsOf: URL(fileURLWithPath: l.base))
        let dp = try LocalDatapath(s, leaf: l.leaf); defer { dp.stop() }
        #expect(try Command.check("nbdinfo", [dp.uri]).contains("can_trim: true"))
        let c = try RawNBDClient(dp.directory.nbdSocket)
        #expect(try c.negotiate(dp.export) == UInt64(8 * Self.mib))
        // Read everything twice: the read map learns every block, so later reads take the fast paths.
        #expect(read(c, cookie: 1, offset: 0, length: 8 * Self.mib) == l.model)
        #expect(read(c, cookie: 2, offset: 0, length: 8 * Self.mib) == l.model)
        let sectorsBefore = Self.allocatedSectors(l.leaf)

        // Unaligned, across block 0 (leaf), block 1 (base only) and block 2 (partly leaf); no FUA.
        let (lo1, n1) = (100, 4 * Self.mib + 40960 - 100)
        #expect(trim(c, cookie: 3, offset: lo1, length: n1) == 0)
        l.trim(lo1, n1)
        // Inside block 3 (leaf), unaligned at both ends, with FUA.
        let (lo2, n2) = (6 * Self.mib + 512, 2 * Self.mib - 1024)
        #expect(trim(c, cookie: 4, offset: lo2, length: n2, flags: NBD.CommandFlag.fua) == 0)
        l.trim(lo2, n2)
        #expect(trim(c, cookie: 5, offset: 8 * Self.mib - 4096, length: 8192) == NBD.Errno.einval)
        #expect(l.model[4096..<8192].allSatisfy { $0 == 0 } && l.model[(2 * Self.mib)..<(2 * Self.mib + 4096)].contains { $0 != 0 },
                "the model zeroes the leaf's pages and keeps the base's")

        // Back through NBD: whole (one file region per block), a sendfile-sized piece, small pieces.
        #expect(read(c, cookie: 6, offset: 0, length: 8 * Self.mib) == l.model)
        #expect(read(c, cookie: 7, offset: 6 * Self.mib + 4096, length: 1 << 20) == Array(l.model[(6 * Self.mib + 4096)..<(7 * Self.mib + 4096)]))
        #expect(read(c, cookie: 8, offset: 0, length: 4096) == Array(l.model[0..<4096]), "the edge page keeps its data")
        #expect(read(c, cookie: 9, offset: 8 * Self.mib - 4096, length: 4096) == Array(l.model[(8 * Self.mib - 4096)...]))
        // A plain write into a punched page (block 0 is wholly in the leaf: the fast path) lands.
        let w = pattern(8192, seed: 99)
        c.request(NBD.Command.write, cookie: 10, offset: 8192, length: 8192, payload: w)
        #expect(c.reply()?.error == 0)
        l.model.replaceSubrange(8192..<16384, with: w)
        #expect(read(c, cookie: 11, offset: 0, length: 64 << 10) == Array(l.model[0..<(64 << 10)]))

        let stats = try dp.control.stats()
        #expect(stats.trims == 2 && stats.errors == 1, "two trims done, the one past the end refused: \(stats)")
        dp.stop()

        // Through the engine; the file gave space back; metadata and the base are untouched.
        #expect(try s.read(l.leaf, count: 8 * Self.mib, at: 0) == l.model)
        // Block 0 minus its edge page and the rewritten 8 KiB, the leaf's 32 KiB of block 2, block 3
        // minus its edge pages; the filesystem may spend a few sectors on splitting extents.
        let punched = (2 * Self.mib - 4096 - 8192) + 32768 + (2 * Self.mib - 8192)
        let sectorsAfter = Self.allocatedSectors(l.leaf)
        #expect(sectorsBefore - sectorsAfter >= punched / 512 - 64, "st_blocks \(sectorsBefore) -> \(sectorsAfter)")
        #expect(try Data(contentsOf: URL(fileURLWithPath: l.base)) == baseBefore)
        let image = try VHDImage(store: try s.provider.open(l.leaf, writable: false), path: l.leaf, writable: false)
        #expect(image.allocatedBlockCount == 3 && image.batmapSaysFull(0) && image.batmapSaysFull(3) && !image.batmapSaysFull(2))
        #expect(s.problems(l.leaf).isEmpty)
    }

    @Test func readOnlyExportRefusesTrim() throws {
        let s = try Scratch(); defer { s.remove() }
        let l = try Layered(s)
        let before = try Data(contentsOf: URL(fileURLWithPath: l.leaf))
        #expect(NBDExport(name: "x", readOnly: true).transmissionFlags(structuredReplies: true) & NBD.TransmissionFlag.sendTrim == 0)
        #expect(NBDExport(name: "x").transmissionFlags(structuredReplies: false) & NBD.TransmissionFlag.sendTrim != 0)
        let dp = try LocalDatapath(s, leaf: l.leaf, readOnly: true); defer { dp.stop() }
        #expect(try Command.check("nbdinfo", [dp.uri]).contains("can_trim: false"))
        let c = try RawNBDClient(dp.directory.nbdSocket)
        _ = try c.negotiate(dp.export)
        #expect(trim(c, cookie: 1, offset: 0, length: 8 * Self.mib) == NBD.Errno.eperm)
        #expect(trim(c, cookie: 2, offset: 4096, length: 4096, flags: NBD.CommandFlag.fua) == NBD.Errno.eperm)
        #expect(read(c, cookie: 3, offset: 0, length: 8 * Self.mib) == l.model)
        #expect(try dp.control.stats().trims == 0)
        dp.stop()
        #expect(try Data(contentsOf: URL(fileURLWithPath: l.leaf)) == before)
    }

    @Test func qemuIoDiscardReadsBackAsTheModel() throws {
        let s = try Scratch(); defer { s.remove() }
        var l = try Layered(s)
        let dp = try LocalDatapath(s, leaf: l.leaf); defer { dp.stop() }
        let sectorsBefore = Self.allocatedSectors(l.leaf)
        // Aligned across blocks 0-2; then unaligned inside block 3.
        for (offset, length) in [(4096, 4 * Self.mib), (6 * Self.mib + 1000, Self.mib)] {
            try Command.check("qemu-io", ["-f", "raw", "-c", "discard \(offset) \(length)", dp.uri])
            l.trim(offset, length)
        }
        let expected = try s.file("expected.raw", l.model)
        try Command.check("qemu-img", ["compare", "-f", "raw", "-F", "raw", dp.uri, expected])
        let stats = try dp.control.stats()
        #expect(stats.trims >= 2 && stats.errors == 0, "\(stats)")
        dp.stop()
        #expect(try s.read(l.leaf, count: 8 * Self.mib, at: 0) == l.model)
        let sectorsAfter = Self.allocatedSectors(l.leaf)
        #expect(sectorsBefore - sectorsAfter >= (3 * Self.mib - 8192) / 512 - 64, "st_blocks \(sectorsBefore) -> \(sectorsAfter)")
        #expect(s.problems(l.leaf).isEmpty)
    }
}
