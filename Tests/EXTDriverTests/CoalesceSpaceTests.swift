import Foundation
import SMCore
import Testing
import VHD

/// `CoalesceSpace`: the room a merge takes, from the images' BATs, to the byte: checked against
/// figures worked out by hand from the layout (2 MiB blocks, each behind a one-sector bitmap with
/// its data 4 KiB-aligned: 2 MiB + 4 KiB a block) and against what the engine then really does.
@Suite struct CoalesceSpaceTests {
    static let mib = 1 << 20
    /// What one appended block takes in a file: 7 sectors of gap, 1 of bitmap, 2 MiB of data.
    static let blockStride: UInt64 = (2 << 20) + 4096

    /// Writes one sector of pattern into each block of `blocks` of the image at `path`.
    func write(_ path: String, blocks: [Int], provider: MemoryStoreProvider, seed: UInt8 = 1) throws {
        let chain = try VHDChain(path: path, provider: provider, writable: true)
        for b in blocks {
            try chain.write([UInt8](repeating: seed &+ UInt8(truncatingIfNeeded: b), count: 512), at: UInt64(b * Self.mib * 2 + 1024))
        }
        try chain.flush()
    }

    func open(_ path: String, _ provider: MemoryStoreProvider) throws -> VHDImage {
        try VHDImage(store: try provider.open(path, writable: false), path: path, writable: false)
    }

    /// Child blocks {1, 2, 7, 15} over a parent holding {0, 1, 5}: the parent lacks 2, 7 and 15.
    @Test func blocksTheParentLacks() throws {
        let p = MemoryStoreProvider()
        try Create.dynamic(at: "/sr/parent.vhd", size: 32 << 20, provider: p)
        try write("/sr/parent.vhd", blocks: [0, 1, 5], provider: p)
        try Snapshot.create(child: "/sr/child.vhd", parent: "/sr/parent.vhd", provider: p)
        try write("/sr/child.vhd", blocks: [1, 2, 7, 15], provider: p, seed: 9)
        let parent = try open("/sr/parent.vhd", p)
        // Metadata ends at 3072 (header, 16-entry BAT, batmap): the first block's data starts at 4096.
        #expect(parent.endOfData == 3 * Self.blockStride)

        let space = try CoalesceSpace(merging: try open("/sr/child.vhd", p), into: parent)
        #expect(space.newBlocks == 3)
        #expect(space.merge == 6_303_744)             // 3 × (2 MiB + 4 KiB)
        #expect(space.resize == 0 && space.resizeJournal == 0 && space.newLeaf == 0)
        #expect(space.total == 6_303_744)

        // The engine's merge grows the parent by exactly that.
        let before = try p.open("/sr/parent.vhd", writable: false).size
        try Coalesce.run(child: "/sr/child.vhd", provider: p)
        #expect(try p.open("/sr/parent.vhd", writable: false).size - before == space.parentGrowth)
    }

    /// Every child block already in the parent: nothing to take.
    @Test func nothingNewTakesNothing() throws {
        let p = MemoryStoreProvider()
        try Create.dynamic(at: "/sr/parent.vhd", size: 16 << 20, provider: p)
        try write("/sr/parent.vhd", blocks: [0, 3], provider: p)
        try Snapshot.create(child: "/sr/child.vhd", parent: "/sr/parent.vhd", provider: p)
        try write("/sr/child.vhd", blocks: [3], provider: p, seed: 5)
        let space = try CoalesceSpace(merging: try open("/sr/child.vhd", p), into: try open("/sr/parent.vhd", p))
        #expect(space == CoalesceSpace())
        #expect(space.total == 0)
    }

    /// A child grown to 1 GiB over a 16 MiB parent whose BAT (8 entries) cannot address it: the
    /// parent's metadata grows to 4608 bytes (512-entry BAT, batmap), so its first block (data
    /// at 4096) moves to the end; then the child's block 511 is appended.
    @Test func aSmallerParentGrowsItsBATFirst() throws {
        let p = MemoryStoreProvider()
        try Create.dynamic(at: "/sr/parent.vhd", size: 16 << 20, provider: p)
        try write("/sr/parent.vhd", blocks: [0, 1, 2, 3], provider: p)
        try Snapshot.create(child: "/sr/child.vhd", parent: "/sr/parent.vhd", provider: p)
        try Resize.run(path: "/sr/child.vhd", size: 1 << 30, provider: p)
        try write("/sr/child.vhd", blocks: [0, 511], provider: p, seed: 3)
        let parent = try open("/sr/parent.vhd", p)
        #expect(parent.endOfData == 4 * Self.blockStride)

        let space = try CoalesceSpace(merging: try open("/sr/child.vhd", p), into: parent)
        #expect(space.newBlocks == 1)
        #expect(space.resize == Self.blockStride)       // one block moved out of the new metadata
        #expect(space.merge == Self.blockStride)
        // Journal: 1564 fixed + (16 + 2048) BAT + (16 + 512) batmap header + (16 + 512) map.
        #expect(space.resizeJournal == 4684)
        #expect(space.total == 4_202_496)

        let before = try p.open("/sr/parent.vhd", writable: false).size
        try Coalesce.run(child: "/sr/child.vhd", provider: p)
        #expect(try p.open("/sr/parent.vhd", writable: false).size - before == space.parentGrowth)
        #expect(try open("/sr/parent.vhd", p).virtualSize == 1 << 30)
    }

    /// A snapshot round also makes a new empty leaf: 5120 bytes for 24 MiB (header, 12-entry BAT,
    /// batmap, three 512-byte locator areas, two footers), as the engine makes it.
    @Test func aSnapshotRoundAddsAnEmptyLeaf() throws {
        let p = MemoryStoreProvider()
        try Create.dynamic(at: "/sr/parent.vhd", size: 24 << 20, provider: p)
        try write("/sr/parent.vhd", blocks: [0], provider: p)
        try Snapshot.create(child: "/sr/leaf.vhd", parent: "/sr/parent.vhd", provider: p)
        try write("/sr/leaf.vhd", blocks: [4, 5], provider: p, seed: 7)
        let base = UUID().uuidString.lowercased() + ".vhd"
        let space = try CoalesceSpace(snapshotRoundOf: try open("/sr/leaf.vhd", p), into: try open("/sr/parent.vhd", p),
                                      baseVolume: base)
        #expect(space.newLeaf == 5120)
        #expect(space.merge == 2 * Self.blockStride)
        #expect(space.total == 5120 + 2 * Self.blockStride)

        try p.rename("/sr/leaf.vhd", to: "/sr/" + base)
        var options = Snapshot.Options()
        options.linkEmptyParent = true
        try Snapshot.create(child: "/sr/leaf.vhd", parent: "/sr/" + base, provider: p, options: options)
        #expect(try p.open("/sr/leaf.vhd", writable: false).size == space.newLeaf)
    }

    /// Bytes a file really takes on disk (st_blocks).
    static func allocated(_ path: String) -> UInt64 {
        var st = stat()
        return stat(path, &st) == 0 ? UInt64(st.st_blocks) * 512 : 0
    }

    /// A sparse parent on a real file (the engine writes a block's sectors only as they come):
    /// the merge fills the file holes under the child's sectors in blocks both have, and the
    /// figure counts exactly those pages; the real merge takes no more than the figure.
    @Test func holesUnderTheChildsSectorsInSharedBlocks() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("swiftsm-space-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let files = FileStoreProvider()
        let parentPath = dir + "/parent.vhd", childPath = dir + "/child.vhd"
        try Create.dynamic(at: parentPath, size: 16 << 20, provider: files)
        let block = 2 * Self.mib
        do {
            // One page at the start of blocks 0, 1 and 2 of the parent: the rest of each is a hole.
            let chain = try VHDChain(path: parentPath, provider: files, writable: true)
            for b in 0..<3 { try chain.write([UInt8](repeating: UInt8(b + 1), count: 4096), at: UInt64(b * block)) }
            try chain.flush()
        }
        try Snapshot.create(child: childPath, parent: parentPath, provider: files)
        do {
            let chain = try VHDChain(path: childPath, provider: files, writable: true)
            try chain.write([UInt8](repeating: 7, count: 65536), at: UInt64(Self.mib))           // block 0: 16 hole pages
            try chain.write([UInt8](repeating: 8, count: 1024), at: UInt64(block + 8192 + 512)) // block 1: 1 hole page
            try chain.write([UInt8](repeating: 9, count: 4096), at: UInt64(2 * block))          // block 2: over parent data
            try chain.write([UInt8](repeating: 10, count: Self.mib), at: UInt64(5 * block))    // block 5: the parent lacks it
            try chain.flush()
        }
        let parentImage = try VHDImage(store: try files.open(parentPath, writable: false), path: parentPath, writable: false)
        let childImage = try VHDImage(store: try files.open(childPath, writable: false), path: childPath, writable: false)
        let space = try CoalesceSpace(merging: childImage, into: parentImage)
        #expect(space.newBlocks == 1 && space.merge == Self.blockStride)
        #expect(space.holes == 65536 + 4096, "\(space)")
        #expect(space.total == Self.blockStride + 65536 + 4096)

        let before = Self.allocated(parentPath)
        try Coalesce.run(child: childPath, provider: files)
        let grown = Self.allocated(parentPath) - before
        // At least the holes filled and the new block's written MiB; at most the figure (plus
        // room for the file system's own extent blocks).
        #expect(grown >= space.holes + UInt64(Self.mib), "grew \(grown)")
        #expect(grown <= space.total + 65536, "grew \(grown), figure \(space.total)")
    }
}
