import Foundation
import NIOCore
@testable import SMCore
import Testing
import VHD

/// Blocks the leaf holds in part (the state of most blocks just after a snapshot) are read by the
/// event loop from the read map's copy of the leaf's sector bitmap: the leaf's sectors from the
/// leaf, the rest from the parent or zeros. The copy is exactly the leaf's bitmap as written to
/// the file whenever no write into the block is pending, never claims a sector a pending write is
/// still setting, and reads through it equal the engine's reads of the chain.
@Suite struct MixedBlockTests {
    /// The sector bitmap of block `b` of `leaf` as the file holds it (a fresh open, nothing
    /// cached), or nil when the leaf has not allocated the block.
    func fileBitmap(_ s: Scratch, _ leaf: String, block b: Int) throws -> [UInt8]? {
        let image = try VHDImage(store: try s.provider.open(leaf, writable: false), path: leaf, writable: false)
        guard image.isAllocated(b) else { return nil }
        if image.batmapSaysFull(b) { return [UInt8](repeating: 0xff, count: image.bitmapBytes) }
        return try image.bitmap(b)
    }

    /// A base of `blocks` 2 MiB blocks, all of them random data but the last (empty), and a leaf
    /// over it holding `runs` (offset, bytes) of new data: the model of the disk and the leaf.
    func snapshotChain(_ s: Scratch, blocks: Int, runs: [(Int, Int)], seed: UInt64) throws -> (leaf: String, model: [UInt8]) {
        let size = blocks << 21
        let leaf = try s.dynamicVHD("disk.vhd", mib: UInt64(blocks * 2))
        var model = [UInt8](repeating: 0, count: size)
        let a = pattern(size - (2 << 20), seed: seed)
        try s.write(leaf, a, at: 0)
        model.replaceSubrange(0..<a.count, with: a)
        let base = s.path + "/base.vhd"
        try s.provider.rename(leaf, to: base)
        try Snapshot.create(child: leaf, parent: base, provider: s.provider)
        for (i, (offset, count)) in runs.enumerated() {
            let b = pattern(count, seed: seed + 1 + UInt64(i))
            try s.write(leaf, b, at: UInt64(offset))
            model.replaceSubrange(offset..<offset + count, with: b)
        }
        return (leaf, model)
    }

    /// Every block's sector map in the read map equals the leaf file's bitmap (blocks `mixed`
    /// must have one; the others none).
    func expectMapsMatchTheFile(_ s: Scratch, _ leaf: String, _ map: ReadMap, blocks: Int, mixed: Set<Int>,
                                _ what: Comment, sourceLocation: SourceLocation = #_sourceLocation) throws {
        for b in 0..<blocks {
            let (known, bitmap) = map.sectorMap(at: UInt64(b) << 21)
            #expect(known, "block \(b) known", sourceLocation: sourceLocation)
            if mixed.contains(b) {
                #expect(bitmap != nil, "block \(b) mapped per sector: \(what)", sourceLocation: sourceLocation)
            }
            if let bitmap {
                #expect(bitmap == (try fileBitmap(s, leaf, block: b)), "block \(b): the map is the file's bitmap: \(what)",
                        sourceLocation: sourceLocation)
            }
        }
    }

    /// Whether the map plans a READ of `length` bytes at `offset` (the plan, if any, is ended at once).
    func planned(_ map: ReadMap, offset: UInt64, length: Int) -> Bool {
        guard map.plan(offset: offset, length: length) != nil else { return false }
        map.finished(bytes: length, micros: 0, failed: false)
        return true
    }

    /// Plans and reads `count` random ranges (any alignment, within and across blocks) from the
    /// map; every one must be planned and equal the model.
    func expectReadsFromTheMap(_ map: ReadMap, _ model: [UInt8], count: Int, seed: UInt64, _ what: Comment,
                               sourceLocation: SourceLocation = #_sourceLocation) throws {
        var rng = SeededGenerator(seed: seed)
        for _ in 0..<count {
            let length = [512, 4096, 3000, 8192, 64 << 10, 1 << 20, 5 << 19].randomElement(using: &rng)!
            let aligned = Bool.random(using: &rng)
            var offset = Int.random(in: 0...(model.count - length), using: &rng)
            if aligned { offset = offset / 4096 * 4096 }
            guard let plan = map.plan(offset: UInt64(offset), length: length) else {
                Issue.record("read at \(offset), \(length) bytes not planned from the map: \(what)", sourceLocation: sourceLocation)
                continue
            }
            defer { map.finished(bytes: length, micros: 0, failed: false) }
            var out = [UInt8](repeating: 0xee, count: length)
            try out.withUnsafeMutableBytes { try plan.execute(into: $0) }
            #expect(digest(out) == digest(model[offset..<offset + length]), "read at \(offset), \(length) bytes: \(what)",
                    sourceLocation: sourceLocation)
        }
    }

    @Test func mixedBlocksReadFromTheirSectorMapsAndFollowWrites() throws {
        let s = try Scratch(); defer { s.remove() }
        // Block 0 and 2 in part over parent data, 1 parent only, 3 in part over zeros.
        let runs = [(4096, 8192), ((1 << 20) + 512, 1536), ((4 << 20) + 8192, 64 << 10), ((6 << 20) + 12288, 4096)]
        var (leaf, model) = try snapshotChain(s, blocks: 4, runs: runs, seed: 81)
        let worker = try ChainWorker(leafPath: leaf, writable: true, stallThreshold: 1 << 62)
        defer { try? worker.closeAndWait(); worker.join() }
        let map = worker.readMap
        // A READ through the chain thread teaches the map every block.
        let box = ResultCollector()
        worker.submitRead(offset: 0, length: 8 << 20, headerRoom: 0) { box.set($0) }
        guard case var .data(all, _) = box.get() else { Issue.record("read failed"); return }
        #expect(digest(all.readBytes(length: 8 << 20) ?? []) == digest(model))
        try expectMapsMatchTheFile(s, leaf, map, blocks: 4, mixed: [0, 2, 3], "learnt")
        #expect(map.sectorMap(at: 2 << 20).bitmap == nil, "block 1 is the parent's")
        #expect(map.mixedBlockCount == 3)
        let before = map.snapshot().mixedReads
        try expectReadsFromTheMap(map, model, count: 300, seed: 1, "as learnt")
        #expect(map.snapshot().mixedReads > before, "mixed blocks read from their sector maps")

        // Writes through the chain thread (aligned, unaligned, into every kind of block): the
        // maps follow the file's bitmaps, block 1 becomes mixed, and reads stay right.
        var rng = SeededGenerator(seed: 2)
        for i in 0..<60 {
            let length = [512, 4096, 1000, 8192, 12345].randomElement(using: &rng)!
            let offset = Int.random(in: 0...(model.count - length), using: &rng) / (i % 3 == 0 ? 1 : 512) * (i % 3 == 0 ? 1 : 512)
            let bytes = pattern(length, seed: 1000 + UInt64(i))
            let done = ResultCollector()
            worker.submitWrite(.write, offset: UInt64(offset), length: UInt64(length), { chain in
                try ChainIO.write(chain, ByteBuffer(bytes: bytes), offset: UInt64(offset), fua: false)
            }) { done.set($0) }
            guard case .done = done.get() else { Issue.record("write failed"); return }
            model.replaceSubrange(offset..<offset + length, with: bytes)
            try expectMapsMatchTheFile(s, leaf, map, blocks: 4, mixed: [], "after write \(i) at \(offset), \(length) bytes")
        }
        #expect(map.sectorMap(at: 2 << 20).bitmap != nil, "block 1 is mixed now")
        try expectReadsFromTheMap(map, model, count: 300, seed: 3, "after writes")

        // A write waiting for the chain thread: the map does not claim its sectors yet, READs of
        // them wait behind it, READs of the sectors around it still come from the map.
        let target = (1 << 20) + 300 * 512      // block 0, sectors the leaf does not hold
        func holds(_ sector: Int) -> Bool? { map.sectorMap(at: 0).bitmap.map { $0[sector >> 3] & (0x80 >> UInt8(sector & 7)) != 0 } }
        let sectors = (target >> 9)..<(target >> 9) + 8
        #expect(sectors.allSatisfy { holds($0) == false })
        let gate = DispatchSemaphore(value: 0)
        let held = ResultCollector(), written = ResultCollector()
        worker.submit(.other, bytes: 0, { _ in gate.wait(); return .done }) { held.set($0) }
        let fresh = pattern(4096, seed: 2000)
        worker.submitWrite(.write, offset: UInt64(target), length: 4096, { chain in
            try ChainIO.write(chain, ByteBuffer(bytes: fresh), offset: UInt64(target), fua: false)
        }) { written.set($0) }
        #expect(sectors.allSatisfy { holds($0) == false }, "not claimed while pending")
        #expect(!planned(map, offset: UInt64(target) + 512, length: 512), "a READ of a pending write's sector waits")
        #expect(worker.writeFast(ByteBuffer(bytes: fresh), offset: UInt64(target), started: DispatchTime.now().uptimeNanoseconds) == nil,
                "no fast write into sectors the leaf does not hold")
        if let plan = map.plan(offset: UInt64(target) - 4096, length: 4096) {
            defer { map.finished(bytes: 4096, micros: 0, failed: false) }
            var out = [UInt8](repeating: 0, count: 4096)
            try out.withUnsafeMutableBytes { try plan.execute(into: $0) }
            #expect(digest(out) == digest(model[target - 4096..<target]))
        } else {
            Issue.record("the sectors before a pending write should come from the map")
        }
        gate.signal()
        _ = held.get()
        guard case .done = written.get() else { Issue.record("write failed"); return }
        model.replaceSubrange(target..<target + 4096, with: fresh)
        try expectMapsMatchTheFile(s, leaf, map, blocks: 4, mixed: [0], "after the held write")
        #expect(sectors.allSatisfy { holds($0) == true }, "claimed once written")

        // Fast writes into sectors of a mixed block the leaf holds; none into a range with a
        // sector it does not hold.
        let mixedWrites = map.snapshot().mixedWrites
        let again = pattern(4096, seed: 2001)
        #expect(worker.writeFast(ByteBuffer(bytes: again), offset: UInt64(target), started: DispatchTime.now().uptimeNanoseconds).isDone)
        model.replaceSubrange(target..<target + 4096, with: again)
        #expect(worker.writeFast(ByteBuffer(bytes: again), offset: UInt64(target) + 512, started: DispatchTime.now().uptimeNanoseconds) == nil)
        #expect(map.snapshot().mixedWrites == mixedWrites + 1)
        try expectReadsFromTheMap(map, model, count: 100, seed: 4, "after fast writes")

        // A block written whole leaves the sector maps: wholly in the leaf, fast writes from then on.
        let count = map.mixedBlockCount
        let whole = pattern(2 << 20, seed: 2002)
        let filled = ResultCollector()
        worker.submitWrite(.write, offset: 6 << 20, length: 2 << 20, { chain in
            try ChainIO.write(chain, ByteBuffer(bytes: whole), offset: 6 << 20, fua: false)
        }) { filled.set($0) }
        guard case .done = filled.get() else { Issue.record("write failed"); return }
        model.replaceSubrange((6 << 20)..<(8 << 20), with: whole)
        #expect(map.sectorMap(at: 6 << 20) == (true, nil) && map.mixedBlockCount == count - 1)
        #expect(worker.writeFast(ByteBuffer(bytes: again), offset: 7 << 20, started: DispatchTime.now().uptimeNanoseconds).isDone)
        model.replaceSubrange((7 << 20)..<(7 << 20) + 4096, with: again)
        try expectReadsFromTheMap(map, model, count: 100, seed: 5, "after a block filled")
        try worker.closeAndWait()
        #expect(digest(try s.read(leaf, count: model.count, at: 0)) == digest(model), "the engine reads what the map read")
        #expect(s.problems(leaf).isEmpty)
    }

    /// A small WRITE of whole sectors the fast path cannot take runs through the engine on the
    /// calling thread while the chain thread is idle, with the map brought up to date as after a
    /// queued one; never while a job runs, while paused, for large or unaligned writes.
    @Test func smallWritesRunInlineOnlyWhileTheChainThreadIsIdle() throws {
        let s = try Scratch(); defer { s.remove() }
        var (leaf, model) = try snapshotChain(s, blocks: 3, runs: [(4096, 4096)], seed: 111)
        let worker = try ChainWorker(leafPath: leaf, writable: true, stallThreshold: 1 << 62)
        defer { try? worker.closeAndWait(); worker.join() }
        let box = ResultCollector()
        worker.submitRead(offset: 0, length: model.count, headerRoom: 0) { box.set($0) }
        _ = box.get()
        func inline(_ offset: Int, _ length: Int, seed: UInt64) -> Bool {
            let bytes = pattern(length, seed: seed)
            guard let r = worker.writeInline(ByteBuffer(bytes: bytes), offset: UInt64(offset), started: DispatchTime.now().uptimeNanoseconds) else { return false }
            if case .done = r {} else { Issue.record("inline write failed at \(offset)") }
            model.replaceSubrange(offset..<offset + length, with: bytes)
            return true
        }
        // Into sectors the leaf does not hold (block 0), a block only the parent holds (1), zeros (2).
        #expect(inline(65536, 4096, seed: 1) && inline(3 << 20, 1024, seed: 2) && inline((4 << 20) + 512, 8192, seed: 3))
        #expect(!inline((3 << 20) + 8192, 1000, seed: 10), "unaligned writes take the queue")
        #expect(worker.inlineWriteCount == 3)
        try expectMapsMatchTheFile(s, leaf, worker.readMap, blocks: 3, mixed: [0, 1, 2], "after inline writes")
        try expectReadsFromTheMap(worker.readMap, model, count: 100, seed: 7, "after inline writes")
        #expect(!inline(8 << 10, 128 << 10, seed: 4), "large writes take the queue")
        // While the chain thread runs a job: the queue.
        let gate = DispatchSemaphore(value: 0)
        let held = ResultCollector()
        worker.submit(.other, bytes: 0, { _ in gate.wait(); return .done }) { held.set($0) }
        #expect(!inline(1 << 20, 4096, seed: 5), "not while a job runs")
        gate.signal()
        _ = held.get()
        #expect(try eventually { worker.statistics().queued == 0 })
        usleep(20_000)
        #expect(inline(1 << 20, 4096, seed: 6))
        // Paused: the queue (which waits for the unpause).
        try worker.pauseAndWait()
        #expect(!inline(1 << 20, 4096, seed: 8), "not while paused")
        try worker.unpauseAndWait()
        // The unpause answers from inside the chain thread's control, just before that thread
        // lets go of the chain: the next inline write may find it still busy for a moment.
        #expect(try eventually { inline(1 << 20, 4096, seed: 9) })
        #expect(worker.statistics().writes == 5)
        try worker.closeAndWait()
        #expect(digest(try s.read(leaf, count: model.count, at: 0)) == digest(model))
        #expect(s.problems(leaf).isEmpty)
    }

    /// A read-only chain is mapped per sector too (nothing changes under it).
    @Test func readOnlyChainsReadMixedBlocksFromTheMap() throws {
        let s = try Scratch(); defer { s.remove() }
        let (leaf, model) = try snapshotChain(s, blocks: 3, runs: [(512, 4096), ((2 << 20) + 4096, 100_000)], seed: 91)
        let worker = try ChainWorker(leafPath: leaf, writable: false)
        defer { try? worker.closeAndWait(); worker.join() }
        let box = ResultCollector()
        worker.submitRead(offset: 0, length: model.count, headerRoom: 0) { box.set($0) }
        _ = box.get()
        #expect(worker.readMap.mixedBlockCount == 2)
        try expectReadsFromTheMap(worker.readMap, model, count: 200, seed: 6, "read-only")
    }

    /// A chain whose stores have no kernel descriptor (here in memory) stays off the map: every
    /// READ takes the chain thread's generic path.
    @Test func storesWithoutADescriptorAreNotMapped() throws {
        let provider = MemoryStoreProvider()
        try Create.dynamic(at: "/m/base.vhd", size: 4 << 20, provider: provider)
        let base = try VHDChain(path: "/m/base.vhd", provider: provider, writable: true)
        try base.write(pattern(4 << 20, seed: 95), at: 0)
        try base.flush()
        try Snapshot.create(child: "/m/leaf.vhd", parent: "/m/base.vhd", provider: provider)
        let chain = try VHDChain(path: "/m/leaf.vhd", provider: provider, writable: true)
        try chain.write(pattern(4096, seed: 96), at: 8192)
        let map = ReadMap()
        map.open(chain)
        map.learn(chain, offset: 0, length: 4 << 20)
        #expect(!planned(map, offset: 0, length: 4096))
        #expect(!planned(map, offset: 3 << 20, length: 4096))
        if map.writeTarget(offset: 8192, length: 4096) != nil {
            Issue.record("a fast write into a store without a descriptor")
            map.writeFinished(bytes: 4096, micros: 0, failed: false)
        }
        #expect(map.mixedBlockCount == 0)
        #expect(ReadPlan.make(chain, offset: 0, length: 4096) == nil)
        map.close()
    }

    /// Over NBD, several connections writing and reading their own pages of the same mixed
    /// blocks at once, across pause, a snapshot and unpause: every READ sees the connection's
    /// last write, the disk read back with nbdcopy equals the engine's read of the chain, and the
    /// READs of mixed blocks came from the map.
    @Test func concurrentConnectionsOverMixedBlocks() throws {
        let s = try Scratch(); defer { s.remove() }
        let blocks = 8
        let (leaf, start) = try snapshotChain(s, blocks: blocks, runs: [(0, 4096), ((5 << 20) + 512, 512)], seed: 101)
        let dp = try LocalDatapath(s, leaf: leaf); defer { dp.stop() }
        let clients = 4
        let page = 4096
        let pages = start.count / page
        let models = ModelSet(start, count: clients)
        let failures = FailureLog()
        func round(_ phase: UInt64) throws {
            let sockets = Clients(try (0..<clients).map { _ in try RawNBDClient(dp.directory.nbdSocket) })
            for c in sockets.list { _ = try c.negotiate(dp.export) }
            DispatchQueue.concurrentPerform(iterations: clients) { id in
                let c = sockets.list[id]
                var rng = SeededGenerator(seed: phase * 100 + UInt64(id))
                var model = models.get(id)
                var cookie: UInt64 = 0
                for op in 0..<400 {
                    // Pages of this connection only (page % clients == id), in the first blocks.
                    let p = Int.random(in: 0..<(pages / clients), using: &rng) * clients + id
                    let inPage = [0, 0, 512, 1000].randomElement(using: &rng)!
                    let length = inPage == 0 ? page : [512, 1024, 2000].randomElement(using: &rng)!
                    let offset = p * page + inPage
                    cookie += 1
                    if Int.random(in: 0..<10, using: &rng) < 3 {
                        let bytes = pattern(length, seed: phase << 32 | UInt64(id) << 20 | UInt64(op))
                        c.request(NBD.Command.write, cookie: cookie, offset: UInt64(offset), length: UInt32(length), payload: bytes)
                        guard let r = c.reply(), r.cookie == cookie, r.error == 0 else { failures.add("write \(id)/\(op)"); return }
                        model.replaceSubrange(offset..<offset + length, with: bytes)
                    } else {
                        c.request(NBD.Command.read, cookie: cookie, offset: UInt64(offset), length: UInt32(length))
                        guard let r = c.reply(), r.cookie == cookie, r.error == 0 else { failures.add("read \(id)/\(op)"); return }
                        if digest(r.payload.dropFirst(8)) != digest(model[offset..<offset + length]) {
                            failures.add("read \(id)/\(op) at \(offset), \(length) bytes: wrong data")
                        }
                    }
                }
                models.set(id, model)
            }
        }
        func expectDiskEqualsModel(_ what: Comment) throws {
            let expected = models.merged(page: page)
            let out = s.path + "/back-\(UUID().uuidString).raw"
            try Command.check("nbdcopy", [dp.uri, out])
            let back = [UInt8](try Data(contentsOf: URL(fileURLWithPath: out)))
            try? FileManager.default.removeItem(atPath: out)
            #expect(digest(back) == digest(expected), "nbdcopy: \(what)")
            #expect(digest(try s.read(leaf, count: expected.count, at: 0)) == digest(expected), "engine: \(what)")
        }
        let readsBefore = dp.datapath.worker.readMap.snapshot().mixedReads
        try round(1)
        #expect(failures.all.isEmpty, "\(failures.all.prefix(5))")
        try expectDiskEqualsModel("after the first round")
        #expect(dp.datapath.worker.readMap.snapshot().mixedReads > readsBefore + 100, "mixed blocks read from the map")
        #expect(dp.datapath.worker.readMap.mixedBlockCount == blocks - 1 || dp.datapath.worker.readMap.mixedBlockCount == blocks)

        // Pause, snapshot, unpause onto the new leaf: a new map, learnt again.
        #expect(try dp.control.send("pause") == "paused")
        let mid = s.path + "/mid.vhd"
        try s.provider.rename(leaf, to: mid)
        try Snapshot.create(child: leaf, parent: mid, provider: s.provider)
        #expect(try dp.control.send("unpause " + StorePath.basename(leaf)) == "running")
        try round(2)
        #expect(failures.all.isEmpty, "\(failures.all.prefix(5))")
        try expectDiskEqualsModel("after the snapshot")
        // And a plain pause/unpause (same leaf).
        #expect(try dp.control.send("pause") == "paused")
        #expect(try dp.control.send("unpause") == "running")
        try round(3)
        #expect(failures.all.isEmpty, "\(failures.all.prefix(5))")
        try expectDiskEqualsModel("after pause and unpause")
        let st = try dp.control.stats()
        #expect(st.errors == 0)
        #expect(dp.datapath.worker.inlineWriteCount > 0, "small writes ran on the event loop")
        #expect(s.problems(leaf).isEmpty)
    }
}

extension Optional where Wrapped == ChainWorker.FastWrite {
    /// Whether this is a fast write answered `.done`.
    var isDone: Bool { if case .answered(.done)? = self { return true } else { return false } }
}

/// Each connection's model of the disk (authoritative for its own pages).
final class ModelSet: @unchecked Sendable {
    private let lock = NSLock()
    private var models: [[UInt8]]

    init(_ start: [UInt8], count: Int) { models = Array(repeating: start, count: count) }

    func get(_ i: Int) -> [UInt8] { lock.withLock { models[i] } }
    func set(_ i: Int, _ m: [UInt8]) { lock.withLock { models[i] = m } }

    /// The disk: page `p` from model `p % count`.
    func merged(page: Int) -> [UInt8] {
        lock.withLock {
            var out = models[0]
            for p in 0..<out.count / page {
                let m = p % models.count
                out.replaceSubrange(p * page..<(p + 1) * page, with: models[m][p * page..<(p + 1) * page])
            }
            return out
        }
    }
}

/// Connections handed to concurrent workers (each uses its own).
final class Clients: @unchecked Sendable {
    let list: [RawNBDClient]
    init(_ list: [RawNBDClient]) { self.list = list }
}

/// Failures noted by concurrent workers.
final class FailureLog: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [String] = []
    func add(_ s: String) { lock.withLock { list.append(s) } }
    var all: [String] { lock.withLock { list } }
}

/// FNV-1a of `bytes` with their count: compared instead of the bytes, so that a failure does not
/// print megabytes.
func digest<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
    return "\(bytes.count) bytes, fnv1a \(String(h, radix: 16))"
}

/// A small deterministic random number generator (xorshift).
struct SeededGenerator: RandomNumberGenerator {
    private var x: UInt64
    init(seed: UInt64) { x = seed &* 0x9E37_79B9_7F4A_7C15 | 1 }
    mutating func next() -> UInt64 {
        x ^= x << 13; x ^= x >> 7; x ^= x << 17
        return x
    }
}
