import Foundation
import TestSupport
import Testing
@testable import VHD

/// A file store that cannot punch holes (as an LV on a LUN would be): everything but `discard`,
/// which keeps the protocol's default.
final class KeepingStore: BlockStore {
    let inner: FileStore
    init(_ inner: FileStore) { self.inner = inner }
    var size: UInt64 { inner.size }
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws { try inner.read(into: buffer, at: offset) }
    func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws { try inner.write(buffer, at: offset) }
    func resize(to size: UInt64) throws { try inner.resize(to: size) }
    func sync() throws { try inner.sync() }
}

/// Discard (TRIM) punches holes in the leaf's block data areas: the file gives space back, the
/// leaf's punched sectors read as zeros, and everything else (sectors read from parents, partial
/// pages at the edges, the parents' files, every byte of metadata) stays as it was; the images
/// still check clean. A store that cannot punch keeps every byte.
@Suite struct DiscardTests {
    static let mib = 1 << 20
    /// Sectors of st_blocks the filesystem may spend on its own extent blocks after punching.
    static let slack = 64

    /// 512-byte units the filesystem holds for `path` (st_blocks).
    static func allocatedSectors(_ path: String) -> Int {
        var st = stat()
        guard stat(path, &st) == 0 else { return -1 }
        return Int(st.st_blocks)
    }

    /// The file ranges of `image` that are block data areas (everything else is metadata).
    static func dataAreas(_ image: VHDImage) -> [Range<Int>] {
        (0..<image.blockCount).filter { image.isAllocated($0) }.map { b in
            let d = Int(image.dataOffset(block: b, sector: 0))
            return d..<d + image.blockSize
        }
    }

    /// The first offsets (at most 10) where `after` differs from `before` outside `areas`.
    static func changedOutside(_ areas: [Range<Int>], _ before: [UInt8], _ after: [UInt8]) -> [Int] {
        guard before.count == after.count else { return [-1] }
        var out: [Int] = []
        var i = 0
        for r in areas.sorted(by: { $0.lowerBound < $1.lowerBound }) + [after.count..<after.count] {
            while i < r.lowerBound {
                if before[i] != after[i] { out.append(i); if out.count == 10 { return out } }
                i += 1
            }
            i = max(i, r.upperBound)
        }
        return out
    }

    static func sha(_ bytes: [UInt8]) -> String { var h = SHA256(); h.update(bytes); return h.finalize() }

    @Test func dynamicLeafGivesSpaceBackAndKeepsEdgesAndMetadata() throws {
        let dir = Fixtures.scratch("discard"); defer { try? FileManager.default.removeItem(atPath: dir) }
        let p = FileStoreProvider()
        let path = dir + "/d.vhd"
        try Create.dynamic(at: path, size: UInt64(16 * Self.mib), provider: p)
        var rng = SplitMix64(seed: 31)
        var model = [UInt8](repeating: 0, count: 16 * Self.mib)
        let chain = try VHDChain(path: path, provider: p, writable: true)
        for b in [0, 1, 2, 3, 5] {     // block 4 stays unallocated
            let d = rng.bytes(2 * Self.mib)
            try chain.write(d, at: UInt64(b * 2 * Self.mib))
            model.replaceSubrange(b * 2 * Self.mib..<(b + 1) * 2 * Self.mib, with: d)
        }
        try chain.flush()
        #expect(Self.dataAreas(chain.leaf).allSatisfy { $0.lowerBound % 4096 == 0 }, "data areas are page-aligned")
        let fileBefore = TestBytes.file(path)
        let sectorsBefore = Self.allocatedSectors(path)
        let original = model

        // Partial tail of block 0, blocks 1-3 whole, unallocated block 4, partial head of block 5.
        let lo = Self.mib + 1000, hi = 11 * Self.mib + 3000
        let released = try chain.discard(offset: UInt64(lo), length: UInt64(hi - lo))
        for r in [(Self.mib + 4096)..<(8 * Self.mib), (10 * Self.mib)..<(11 * Self.mib)] {
            model.replaceSubrange(r, with: repeatElement(0, count: r.count))
        }
        #expect(released == UInt64(8 * Self.mib - 4096))
        let sectorsAfter = Self.allocatedSectors(path)
        // Splitting extents may cost the filesystem a block or two of its own.
        #expect(sectorsBefore - sectorsAfter >= Int(released / 512) - Self.slack, "st_blocks \(sectorsBefore) -> \(sectorsAfter)")

        // The open chain and a fresh one both read the model: zeros where punched, edges kept.
        #expect(try chain.read(count: 16 * Self.mib, at: 0) == model)
        let reread = try VHDChain(path: path, provider: p)
        #expect(Self.sha(try reread.read(count: 16 * Self.mib, at: 0)) == Self.sha(model))
        #expect(try reread.read(count: 4096 - 1000, at: UInt64(lo)) == Array(original[lo..<Self.mib + 4096]))
        #expect(try reread.read(count: 3000, at: UInt64(11 * Self.mib)) == Array(original[(11 * Self.mib)..<hi]))
        #expect(try reread.read(count: 4096, at: UInt64(Self.mib + 4096)).allSatisfy { $0 == 0 })

        // No byte outside the data areas changed (headers, BAT, batmap, bitmaps, footers), nor the size.
        let fileAfter = TestBytes.file(path)
        #expect(fileAfter.count == fileBefore.count)
        #expect(Self.changedOutside(Self.dataAreas(reread.leaf), fileBefore, fileAfter).isEmpty)
        #expect(reread.leaf.allocatedBlockCount == 5 && reread.leaf.batmapValid)
        #expect((0..<8).filter { reread.leaf.batmapSaysFull($0) } == [0, 1, 2, 3, 5])
        #expect(Check.run(path: path, provider: p).map(\.valid) == [true])

        // Range and permission errors change nothing.
        #expect(throws: VHDError.self) { try chain.discard(offset: UInt64(16 * Self.mib - 512), length: 1024) }
        #expect(throws: VHDError.self) { try reread.leaf.discard(0..<4096) }
        #expect(TestBytes.file(path) == fileAfter)
    }

    @Test func childDiscardKeepsParentSectorsAndParentFile() throws {
        let dir = Fixtures.scratch("discard"); defer { try? FileManager.default.removeItem(atPath: dir) }
        let p = FileStoreProvider()
        let base = dir + "/base.vhd", leaf = dir + "/leaf.vhd"
        try Create.dynamic(at: base, size: UInt64(8 * Self.mib), provider: p)
        var rng = SplitMix64(seed: 32)
        var model = [UInt8](repeating: 0, count: 8 * Self.mib)
        let parentData = rng.bytes(6 * Self.mib)
        let b = try VHDChain(path: base, provider: p, writable: true)
        try b.write(parentData, at: 0)
        try b.flush()
        model.replaceSubrange(0..<parentData.count, with: parentData)
        try Snapshot.create(child: leaf, parent: base, provider: p)
        let chain = try VHDChain(path: leaf, provider: p, writable: true)
        // Block 0 in part (sectors 128..<1152), block 2 whole; block 1 only in the parent.
        for (offset, count) in [(64 << 10, 512 << 10), (4 * Self.mib, 2 * Self.mib)] {
            let d = rng.bytes(count)
            try chain.write(d, at: UInt64(offset))
            model.replaceSubrange(offset..<offset + count, with: d)
        }
        try chain.flush()
        let baseBefore = Self.sha(TestBytes.file(base))
        let leafBefore = TestBytes.file(leaf)
        let sectorsBefore = Self.allocatedSectors(leaf)

        let released = try chain.discard(offset: 0, length: UInt64(6 * Self.mib))
        #expect(released == UInt64(4 * Self.mib), "block 0 and 2's data areas, nothing for block 1")
        // What the leaf held reads zeros; the rest of block 0 and all of block 1 still read the parent.
        for r in [(64 << 10)..<(576 << 10), (4 * Self.mib)..<(6 * Self.mib)] {
            model.replaceSubrange(r, with: repeatElement(0, count: r.count))
        }
        let reread = try VHDChain(path: leaf, provider: p)
        #expect(Self.sha(try reread.read(count: 8 * Self.mib, at: 0)) == Self.sha(model))
        #expect(try reread.read(count: 4096, at: UInt64(576 << 10)) == Array(parentData[(576 << 10)..<((576 << 10) + 4096)]),
                "an allocated block's parent-only sectors read the parent")
        #expect(try reread.read(count: 4096, at: UInt64(2 * Self.mib)) == Array(parentData[(2 * Self.mib)..<(2 * Self.mib + 4096)]))
        #expect(try reread.read(count: 4096, at: UInt64(64 << 10)).allSatisfy { $0 == 0 })
        let map = try reread.leaf.bitmap(0)
        #expect((0..<4096).filter { SectorBitmap.test(map, $0) } == Array(128..<1152), "the bitmap is untouched")

        #expect(Self.sha(TestBytes.file(base)) == baseBefore, "the parent file is never touched")
        let leafAfter = TestBytes.file(leaf)
        #expect(Self.changedOutside(Self.dataAreas(reread.leaf), leafBefore, leafAfter).isEmpty)
        // Only what the leaf wrote was allocated in its file: 512 KiB of block 0, all of block 2.
        #expect(sectorsBefore - Self.allocatedSectors(leaf) >= ((512 << 10) + 2 * Self.mib) / 512 - Self.slack)
        var options = Check.Options()
        options.parents = true
        #expect(Check.run(path: leaf, provider: p, options: options).map(\.valid) == [true, true])
    }

    @Test func fixedDiskPunchesItsDataButNotItsFooter() throws {
        let dir = Fixtures.scratch("discard"); defer { try? FileManager.default.removeItem(atPath: dir) }
        let p = FileStoreProvider()
        let path = dir + "/f.vhd"
        try Create.fixed(at: path, size: UInt64(4 * Self.mib), provider: p)
        var rng = SplitMix64(seed: 33)
        var model = rng.bytes(4 * Self.mib)
        let chain = try VHDChain(path: path, provider: p, writable: true)
        try chain.write(model, at: 0)
        try chain.flush()
        let footer = Array(TestBytes.file(path).suffix(512))
        let sectorsBefore = Self.allocatedSectors(path)
        let released = try chain.discard(offset: 1000, length: UInt64(4 * Self.mib - 1000))
        #expect(released == UInt64(4 * Self.mib - 4096))
        model.replaceSubrange(4096..<(4 * Self.mib), with: repeatElement(0, count: 4 * Self.mib - 4096))
        #expect(try VHDChain(path: path, provider: p).read(count: 4 * Self.mib, at: 0) == model)
        #expect(Array(TestBytes.file(path).suffix(512)) == footer)
        #expect(sectorsBefore - Self.allocatedSectors(path) >= Int(released / 512) - Self.slack)
        #expect(Check.run(path: path, provider: p).map(\.valid) == [true])
    }

    @Test func storesThatCannotPunchKeepEveryByte() throws {
        let dir = Fixtures.scratch("discard"); defer { try? FileManager.default.removeItem(atPath: dir) }
        let p = FileStoreProvider()
        let path = dir + "/k.vhd"
        try Create.dynamic(at: path, size: UInt64(8 * Self.mib), provider: p)
        var rng = SplitMix64(seed: 34)
        let data = rng.bytes(6 * Self.mib)
        try VHDChain(path: path, provider: p, writable: true).write(data, at: 0)
        let before = TestBytes.file(path)
        let sectorsBefore = Self.allocatedSectors(path)

        let kept = try VHDImage(store: KeepingStore(try FileStore(path: path, writable: true)), path: path, writable: true)
        #expect(!kept.discardRanges(in: 0..<UInt64(6 * Self.mib)).isEmpty, "there was something to punch")
        #expect(try kept.discard(0..<UInt64(6 * Self.mib)) == 0)
        #expect(TestBytes.file(path) == before)
        #expect(Self.allocatedSectors(path) == sectorsBefore)
        #expect(try VHDChain(path: path, provider: p).read(count: 6 * Self.mib, at: 0) == data)

        // Memory stores keep the default too.
        let m = MemoryStoreProvider()
        try Create.dynamic(at: "/sr/m.vhd", size: UInt64(4 * Self.mib), provider: m)
        let mc = try VHDChain(path: "/sr/m.vhd", provider: m, writable: true)
        try mc.write(Array(data[0..<(4 * Self.mib)]), at: 0)
        let memBefore = (try m.open("/sr/m.vhd", writable: false) as! MemoryStore).bytes
        #expect(try mc.discard(offset: 0, length: UInt64(4 * Self.mib)) == 0)
        #expect((try m.open("/sr/m.vhd", writable: false) as! MemoryStore).bytes == memBefore)
        #expect(try mc.read(count: 4 * Self.mib, at: 0) == Array(data[0..<(4 * Self.mib)]))
    }
}
