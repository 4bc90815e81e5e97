import CBT
import Foundation
import SMCore
import Testing
import VHD

/// The CBT log format against fixtures made from blktap's published layout
/// (`fixtures/cbt/make-fixtures.py`: `struct cbt_log_metadata` packed by Python's `struct` with C
/// alignment, the bitmap with tapdisk's bit order): what we write equals them byte for byte, and
/// what we read from them is what the generator put in.
@Suite struct CBTLogFormatTests {
    static let dir = Fixtures.packageRoot.appendingPathComponent("fixtures/cbt")

    static func fixture(_ name: String) throws -> [UInt8] { Array(try Data(contentsOf: dir.appendingPathComponent(name))) }

    @Test func freshLogIsByteExact() throws {
        let store = MemoryStore()
        try CBTLog.create(on: store, header: CBTLogHeader(consistent: true, size: 4 << 20))
        #expect(store.bytes == (try Self.fixture("fresh-4MiB.cbtlog")))
    }

    @Test func linkedLogIsByteExact() throws {
        let store = MemoryStore()
        let h = CBTLogHeader(parent: "3fb2e1e4-0f1c-4e61-9a52-7a3c4b1d2e5f", child: "a1b2c3d4-e5f6-4789-8abc-def012345678",
                             consistent: true, size: 4 << 20)
        let log = try CBTLog.create(on: store, header: h)
        var bits = CBTBitmap(size: 4 << 20)
        for b: UInt64 in [0, 1, 9, 63] { bits.set(b) }
        try log.writeBitmap(bits)
        #expect(store.bytes == (try Self.fixture("linked-4MiB.cbtlog")))
        #expect(store.bytes[48] == 0b0000_0011 && store.bytes[49] == 0b0000_0010 && store.bytes[55] == 0b1000_0000)
    }

    @Test func readsTheFixtures() throws {
        let linked = CBTLog(store: MemoryStore(bytes: try Self.fixture("linked-4MiB.cbtlog")))
        let h = try linked.header()
        #expect(h.parent == "3fb2e1e4-0f1c-4e61-9a52-7a3c4b1d2e5f")
        #expect(h.child == "a1b2c3d4-e5f6-4789-8abc-def012345678")
        #expect(h.consistent && h.consistencyFlag == 1 && h.size == 4 << 20 && h.bitmapByteCount == 8)
        let bits = try linked.bitmap(h)
        #expect((0..<64).filter { bits.isSet(UInt64($0)) } == [0, 1, 9, 63])
        let ranges: [Range<UInt64>] = [0..<(128 << 10), (9 << 16)..<(10 << 16), (63 << 16)..<(64 << 16)]
        #expect(bits.changedRanges(size: h.size) == ranges)

        let odd = CBTLog(store: MemoryStore(bytes: try Self.fixture("inconsistent-odd.cbtlog")))
        let o = try odd.header()
        #expect(!o.consistent && o.child == nil && o.parent == "a1b2c3d4-e5f6-4789-8abc-def012345678")
        #expect(o.size == 10 * 65536 + 512 && o.bitmapByteCount == 2)
        // The last block is partial: its range ends at the disk's end.
        let last: [Range<UInt64>] = [(10 << 16)..<((10 << 16) + 512)]
        #expect(try odd.bitmap(o).changedRanges(size: o.size) == last)
    }

    @Test func headerRoundTripKeepsPaddingAndFlag() throws {
        var bytes = try Self.fixture("linked-4MiB.cbtlog")
        bytes[32] = 7; bytes[36] = 0xAB; bytes[39] = 0xCD
        let h = try CBTLogHeader(bytes: bytes)
        #expect(h.consistencyFlag == 7 && h.consistent && h.padding == 0xCD00_00AB)
        #expect(h.encoded() == Array(bytes[0..<48]))
        #expect(throws: CBTFormatError.self) { try CBTLogHeader(bytes: Array(bytes[0..<47])) }
    }

    @Test func setFlagAndGrowChangeOnlyTheirFields() throws {
        let store = MemoryStore(bytes: try Self.fixture("linked-4MiB.cbtlog"))
        let log = CBTLog(store: store)
        try log.setConsistent(false)
        var expected = try Self.fixture("linked-4MiB.cbtlog")
        expected[32] = 0
        #expect(store.bytes == expected)
        // cbt-util set -s: the bitmap grows with clear bits, then the size.
        try log.grow(toSize: 8 << 20)
        expected[32 + 8 + 2] = 0x80            // size 8 MiB = 0x800000, little-endian at 40
        expected += [UInt8](repeating: 0, count: 8)
        #expect(store.bytes == expected)
        #expect(throws: CBTFormatError.self) { try log.grow(toSize: 1 << 20) }
    }

    @Test func bitmapMarksRangesAndReportsChangedBytes() {
        var b = CBTBitmap(size: 1 << 30)                         // 16384 blocks, 2048 bytes
        #expect(b.bytes.count == 2048)
        #expect(b.mark(offset: 65536 * 3 + 10, length: 1) == 0..<1)
        #expect(b.mark(offset: 65536 * 3, length: 65536) == nil)  // already set
        #expect(b.mark(offset: 65536 * 7, length: 65536 * 20) == 0..<4)
        #expect((0..<32).filter { b.isSet(UInt64($0)) } == [3] + Array(7..<27))
        #expect(b.changedBlockCount == 21)
        // Past the end is clamped, zero length marks nothing.
        #expect(b.mark(offset: (1 << 30) - 512, length: 4096) == 2047..<2048)
        #expect(b.mark(offset: 0, length: 0) == nil)
    }

    @Test func xapiBytesReverseEachByte() {
        var b = CBTBitmap(size: 16 * 65536)
        b.set(0); b.set(9)
        #expect(b.bytes == [0x01, 0x02])
        #expect(b.xapiBytes == [0x80, 0x40])
        #expect(Data(b.xapiBytes).base64EncodedString() == "gEA=")
    }

    @Test func unionGrowsAcrossSizes() {
        var small = CBTBitmap(size: 8 * 65536)
        small.set(2)
        var big = CBTBitmap(size: 24 * 65536)
        big.set(20)
        var m = small
        m.grow(toSize: 24 * 65536)
        m.formUnion(big)
        #expect(m.bytes == [0x04, 0x00, 0x10])
    }
}
