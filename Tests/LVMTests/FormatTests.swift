import Testing
import VHD
@testable import LVM

/// The binary structures: crc, label, PV header, metadata area header, circular buffer.
@Suite struct FormatTests {
    @Test func checksumMatchesLVM2Vectors() {
        #expect(LVMChecksum.compute([]) == 0xf597_a6cf)
        #expect(LVMChecksum.compute(Array("123456789".utf8)) == 0x4991_cf02)
    }

    @Test func labelRoundTripsAndChecksCRC() throws {
        let uuid = LVMUUID("1LcC33-fcqx-c4ds-aLG9-E6j8-gi7p-KJwcaq")!
        let header = PVHeader(uuid: uuid, deviceSize: 64 << 20, dataAreas: [DiskArea(offset: 1 << 20, size: 0)],
                              metadataAreas: [DiskArea(offset: 4096, size: 1_044_480)])
        let bytes = try Label(pvHeader: header).encode()
        // The offsets of the reference example (lvm2-format.md §4 and §12), relative to the label.
        #expect(Array(bytes[0..<8]) == Array("LABELONE".utf8))
        #expect(bytes.le64(8) == 1)
        #expect(bytes.le32(20) == 32)
        #expect(String(decoding: bytes[32..<64], as: UTF8.self) == "1LcC33fcqxc4dsaLG9E6j8gi7pKJwcaq")
        #expect(bytes.le64(584 - 512) == 1 << 20)
        #expect(bytes.le64(616 - 512) == 4096 && bytes.le64(624 - 512) == 1_044_480)
        #expect(bytes.le32(648 - 512) == 2 && bytes.le32(652 - 512) == 1)
        let back = try #require(try Label.decode(bytes, sectorNumber: 1))
        #expect(back.pvHeader == header)
        var bad = bytes
        bad[100] ^= 1
        #expect(throws: LVMError.self) { try Label.decode(bad, sectorNumber: 1) }
        #expect(throws: LVMError.invalidLabel("sector field 1 in sector 2")) { try Label.decode(bytes, sectorNumber: 2) }
    }

    @Test func labelWithoutTerminatorIsRefused() throws {
        var b = [UInt8](repeating: 0, count: 512)
        b.put(Label.id, at: 0); b.setLE64(1, at: 8); b.setLE32(32, at: 20); b.put(Label.type, at: 24)
        b.put(Array(String(repeating: "a", count: 32).utf8), at: 32)
        for o in stride(from: 72, to: 512, by: 8) { b.setLE64(0x1000, at: o) }
        b.setLE32(LVMChecksum.compute(b, 20..<512), at: 16)
        #expect(throws: LVMError.invalidPVHeader("data area list has no terminator")) { try Label.decode(b, sectorNumber: 1) }
    }

    @Test func mdaHeaderRoundTripsAndValidates() throws {
        let h = MDAHeader(start: 4096, areaSize: 1_044_480, committed: RawLocation(offset: 2560, size: 1316, checksum: 0xdc7f_2bec))
        let b = h.encode()
        #expect(Array(b[4..<20]) == MDAHeader.magic)
        #expect(b.le64(40) == 2560 && b.le64(48) == 1316 && b.le32(56) == 0xdc7f_2bec)
        #expect(try MDAHeader.decode(b, expectedStart: 4096, expectedSize: 1_044_480) == h)
        #expect(throws: LVMError.self) { try MDAHeader.decode(b, expectedStart: 8192, expectedSize: 1_044_480) }
        var bad = b
        bad[300] = 7
        #expect(throws: LVMError.self) { try MDAHeader.decode(bad, expectedStart: 4096, expectedSize: 1_044_480) }
        #expect(h.maxTextSize == 521_472)
    }

    @Test func nextOffsetFollowsLVM2Rules() {
        var h = MDAHeader(start: 4096, areaSize: 61_440)
        #expect(h.nextOffset == 512)
        h.committed = RawLocation(offset: 512, size: 1000, checksum: 0)
        #expect(h.nextOffset == 1536)
        h.committed = RawLocation(offset: 59_392, size: 1200, checksum: 0)
        #expect(h.nextOffset == 60_928)
        // A copy that wrapped: 1277 bytes at 60928 (512 at the end, 765 from +512); the next goes to 1536.
        h.committed = RawLocation(offset: 60_928, size: 1277, checksum: 0)
        #expect(h.nextOffset == 1536)
        // Less than a sector left at the end: restart at 512.
        h.committed = RawLocation(offset: 60_416, size: 600, checksum: 0)
        #expect(h.nextOffset == 512)
    }

    @Test func textWrapsAroundTheBufferAndReadsBack() throws {
        let store = MemoryStore(bytes: [UInt8](repeating: 0, count: 8192 + 61_440), isBlockDevice: true)
        let mda = MetadataArea(area: DiskArea(offset: 8192, size: 61_440))
        var header = MDAHeader(start: 8192, areaSize: 61_440)
        let text = Array((0..<1500).map { UInt8(ascii: "a") + UInt8($0 % 26) }) + [0]
        let loc = try mda.writeText(text, at: 60_928, header: header, to: store)
        #expect(loc.offset == 60_928 && loc.size == 1501)
        // The first 512 bytes at the end of the area, the rest from +512.
        #expect(Array(store.bytes[8192 + 60_928..<8192 + 61_440]) == Array(text[0..<512]))
        #expect(Array(store.bytes[8192 + 512..<8192 + 512 + 989]) == Array(text[512...]))
        header.committed = loc
        #expect(try mda.readText(at: loc, header: header, from: store) == Array(text.dropLast()))
        var badLoc = loc
        badLoc.checksum ^= 1
        #expect(throws: LVMError.self) { try mda.readText(at: badLoc, header: header, from: store) }
        badLoc = loc
        badLoc.offset = 100
        #expect(throws: LVMError.self) { try mda.readText(at: badLoc, header: header, from: store) }
        badLoc = loc
        badLoc.size = 1 << 40
        #expect(throws: LVMError.self) { try mda.readText(at: badLoc, header: header, from: store) }
    }

    @Test func uuidFormats() throws {
        let u = LVMUUID.random()
        #expect(u.raw.count == 32)
        #expect(u.description.count == 38)
        #expect(LVMUUID(u.description) == u)
        #expect(LVMUUID("short") == nil)
        #expect(LVMUUID(String(repeating: "$", count: 32)) == nil)
    }
}
