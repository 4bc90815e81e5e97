import Foundation
import Testing
@testable import VHD

private let mib = 1 << 20

/// Coalesce's read-ahead: the reader threads used for files and the inline reader used for other
/// stores merge the same bytes; the `merged` callback accounts for every sector on the calling
/// thread; cancelling half-way stops the readers and leaves the chain reading as before.
@Suite struct CoalescePipelineTests {
    /// A 24 MiB parent with data in blocks 0-3 and a snapshot of it whose sectors cover every
    /// path of a merge: runs into a full parent block and into partly written ones (one run, a
    /// few, more than 32), new parent blocks with many runs at unaligned sectors, a full child
    /// block, a lone last sector, a block the child never wrote. Returns the memory provider.
    static func makeChain() throws -> MemoryStoreProvider {
        let p = MemoryStoreProvider()
        var rng = SplitMix64(seed: 77)
        try Create.dynamic(at: "/sr/parent.vhd", size: UInt64(24 * mib), provider: p)
        let pc = try VHDChain(path: "/sr/parent.vhd", provider: p, writable: true)
        try pc.write(rng.bytes(2 * mib), at: 0)
        try pc.write(rng.bytes(300 * 512), at: UInt64(2 * mib + 4096))
        for i in 0..<30 { try pc.write(rng.bytes(512 * (i % 4 + 1)), at: UInt64(4 * mib + i * 60_000 / 512 * 512)) }
        try pc.write(rng.bytes(mib), at: UInt64(6 * mib))
        try Snapshot.create(child: "/sr/child.vhd", parent: "/sr/parent.vhd", provider: p)
        let cc = try VHDChain(path: "/sr/child.vhd", provider: p, writable: true)
        for i in 0..<50 { try cc.write(rng.bytes(512), at: UInt64(i * 40_000 / 512 * 512 + 512)) }          // full parent block 0
        try cc.write(rng.bytes(9 * 512), at: UInt64(2 * mib + 3 * 512))                                   // block 1: one run
        for i in 0..<10 { try cc.write(rng.bytes(1024), at: UInt64(4 * mib + 1536 + i * 150_000 / 512 * 512)) } // block 2: 10 runs
        for i in 0..<100 { try cc.write(rng.bytes(1536), at: UInt64(6 * mib + 512 + i * 20_480)) }          // block 3: 100 runs
        for b in 4..<8 {                                                                                  // new blocks, 64 runs each
            for i in 0..<64 { try cc.write(rng.bytes(512 * (1 + i % 5)), at: UInt64(b * 2 * mib + 512 * (7 + i * 61))) }
        }
        try cc.write(rng.bytes(2 * mib), at: UInt64(16 * mib))                        // block 8 full
        try cc.write(rng.bytes(512), at: UInt64(20 * mib - 512))                                          // block 9: last sector
        try cc.write(rng.bytes(7 * 512), at: UInt64(22 * mib + 4096 * 3 + 512))                          // block 11; 10 untouched
        return p
    }

    /// The chain of `makeChain` copied into a scratch folder of files; returns the folder.
    static func filesOf(_ p: MemoryStoreProvider) -> String {
        let dir = Fixtures.scratch("coalesce-pipeline")
        for name in ["parent.vhd", "child.vhd"] { TestBytes.write(p.bytes("/sr/" + name)!, to: dir + "/" + name) }
        return dir
    }

    @Test func readerThreadsAndInlineReaderWriteTheSameParent() throws {
        let p = try Self.makeChain()
        let dir = Self.filesOf(p)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let expected = try VHDChain(path: "/sr/child.vhd", provider: p).read(count: 24 * mib, at: 0)
        let inline = try Coalesce.run(child: "/sr/child.vhd", provider: p)
        let files = FileStoreProvider()
        let threaded = try Coalesce.run(child: dir + "/child.vhd", provider: files)
        #expect(threaded.sectors == inline.sectors)
        #expect(threaded.parentPath == dir + "/parent.vhd")
        #expect(TestBytes.file(dir + "/parent.vhd") == p.bytes("/sr/parent.vhd")!, "parents differ byte for byte")
        let merged = try VHDChain(path: dir + "/parent.vhd", provider: files).read(count: 24 * mib, at: 0)
        if let m = Content.mismatch(merged, expected) { Issue.record("parent after coalesce: \(m)") }
        let reports = Check.run(path: dir + "/parent.vhd", provider: files)
        #expect(reports.allSatisfy { $0.valid }, "\(reports)")
    }

    @Test(arguments: [true, false])
    func mergedCallbackCountsEverySectorOnTheCallingThread(files: Bool) throws {
        let p = try Self.makeChain()
        let dir = Self.filesOf(p)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let provider: any StoreProvider = files ? FileStoreProvider() : p
        let child = files ? dir + "/child.vhd" : "/sr/child.vhd"
        let caller = pthread_self()
        var calls: [UInt64] = []
        var elsewhere = 0
        var progressCalls = 0
        var lastProgress = (0, 0)
        let r = try Coalesce.run(child: child, provider: provider, progress: { done, total in
            progressCalls += 1
            lastProgress = (done, total)
        }, merged: { bytes in
            calls.append(bytes)
            if pthread_equal(pthread_self(), caller) == 0 { elsewhere += 1 }
        })
        #expect(calls.reduce(0, +) == r.sectors * 512)
        #expect(calls.count == 11, "blocks 0-9 and 11 hold sectors of the child")
        #expect(calls.allSatisfy { $0 > 0 && $0 % 512 == 0 })
        #expect(elsewhere == 0, "merged was called off the calling thread")
        #expect(progressCalls == 12 && lastProgress == (12, 12))
    }

    @Test(arguments: [true, false])
    func cancellingHalfWayStopsTheReadersAndKeepsTheChain(files: Bool) throws {
        let p = try Self.makeChain()
        let dir = Self.filesOf(p)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let provider: any StoreProvider = files ? FileStoreProvider() : p
        let child = files ? dir + "/child.vhd" : "/sr/child.vhd"
        let before = try Fixtures.contentHash(VHDChain(path: child, provider: provider))
        let childBytes = files ? TestBytes.file(child) : p.bytes(child)!
        var polls = 0
        var readerAtCancel = false
        var mergedBlocks = 0
        #expect(throws: VHDError.cancelled) {
            try Coalesce.run(child: child, provider: provider, shouldCancel: {
                polls += 1
                guard polls == 6 else { return false }
                readerAtCancel = BlockPrefetcher.readerRunning(for: child)
                return true
            }, merged: { _ in mergedBlocks += 1 })
        }
        #expect(mergedBlocks == 5, "blocks 0-4 were merged before the cancel")
        #expect(readerAtCancel == files, "reader threads run for files only")
        #expect(!BlockPrefetcher.readerRunning(for: child), "a reader thread outlived the cancelled coalesce")
        #expect(try Fixtures.contentHash(VHDChain(path: child, provider: provider)) == before)
        #expect((files ? TestBytes.file(child) : p.bytes(child)!) == childBytes, "the child was modified")
        // Coalescing again completes the merge.
        let r = try Coalesce.run(child: child, provider: provider)
        #expect(try Fixtures.contentHash(VHDChain(path: r.parentPath, provider: provider)) == before)
    }
}
