import Foundation
import NIOCore
@testable import SMCore
import Testing
import VHD

/// Plain WRITEs into blocks wholly present in the leaf are pwritten by the event loop (no chain
/// thread): they land byte-exact in the leaf file, are seen by every connection and by the
/// engine, never touch metadata, and are waited for by pause, which loses none of them.
@Suite struct WriteFastPathTests {
    /// Writes `bytes` at `offset` (with `flags`) and waits for the reply.
    func write(_ c: RawNBDClient, cookie: UInt64, offset: UInt64, flags: UInt16 = 0, _ bytes: [UInt8]) -> Bool {
        c.request(NBD.Command.write, flags: flags, cookie: cookie, offset: offset, length: UInt32(bytes.count), payload: bytes)
        guard let r = c.reply() else { return false }
        return r.cookie == cookie && r.error == 0
    }

    /// Reads `length` bytes at `offset` (structured replies).
    func read(_ c: RawNBDClient, cookie: UInt64, offset: UInt64, length: Int) -> [UInt8]? {
        c.request(NBD.Command.read, cookie: cookie, offset: offset, length: UInt32(length))
        guard let r = c.reply(), r.cookie == cookie, r.error == 0 else { return nil }
        return Array(r.payload.dropFirst(8))
    }

    /// A base holding blocks 0-2 (block 2 in part), and a leaf over it holding all of block 0 and
    /// part of block 2: block 0 wholly in the leaf, 1 parent only, 2 mixed, 3 nothing.
    func layeredChain(_ s: Scratch) throws -> (leaf: String, model: [UInt8]) {
        let leaf = try s.dynamicVHD("disk.vhd", mib: 8)
        var model = [UInt8](repeating: 0, count: 8 << 20)
        let a = pattern(5 << 20, seed: 71)
        try s.write(leaf, a, at: 0)
        model.replaceSubrange(0..<a.count, with: a)
        let base = s.path + "/base.vhd"
        try s.provider.rename(leaf, to: base)
        try Snapshot.create(child: leaf, parent: base, provider: s.provider)
        for (offset, count, seed) in [(0, 2 << 20, 72), ((4 << 20) + 8192, 64 << 10, 73)] {
            let b = pattern(count, seed: UInt64(seed))
            try s.write(leaf, b, at: UInt64(offset))
            model.replaceSubrange(offset..<offset + count, with: b)
        }
        return (leaf, model)
    }

    @Test func onlyWholeLeafBlocksTakeTheFastPath() throws {
        let s = try Scratch(); defer { s.remove() }
        let (leaf, model) = try layeredChain(s)
        // No write counts as held up here (a slow machine must not send writes to the queue).
        let worker = try ChainWorker(leafPath: leaf, writable: true, stallThreshold: 1 << 62)
        defer { try? worker.closeAndWait(); worker.join() }
        // Nothing learnt yet: every write takes the queue.
        let page = ByteBuffer(bytes: pattern(4096, seed: 74))
        #expect(worker.writeFast(page, offset: 4096, started: DispatchTime.now().uptimeNanoseconds) == nil)
        // A READ through the chain thread teaches the map every block.
        let box = ResultCollector()
        worker.submitRead(offset: 0, length: 8 << 20, headerRoom: 0) { box.set($0) }
        guard case var .data(all, _) = box.get() else { Issue.record("read failed"); return }
        #expect(all.readBytes(length: 8 << 20) == model)
        for (offset, fast) in [(4096, true), ((2 << 20) - 4096, true), ((2 << 20) - 512, false), (2 << 20, false),
                               ((4 << 20) + 8192, false), (6 << 20, false), (4097, false)] {
            let result = worker.writeFast(ByteBuffer(bytes: pattern(4096, seed: 75)), offset: UInt64(offset), started: DispatchTime.now().uptimeNanoseconds)
            #expect((result != nil) == fast, "offset \(offset)")
            if let result, case .answered(.done) = result {} else if result != nil { Issue.record("fast write failed at \(offset)") }
        }
        // Paused: no fast write, and after the pause none either until the map is open again.
        try worker.pauseAndWait()
        #expect(worker.writeFast(page, offset: 4096, started: DispatchTime.now().uptimeNanoseconds) == nil)
        try worker.unpauseAndWait()
        #expect(worker.writeFast(page, offset: 4096, started: DispatchTime.now().uptimeNanoseconds) == nil, "a new map knows nothing yet")
        #expect(worker.statistics().writes == 2)
    }

    @Test func aHeldUpFastWriteSendsWritesToTheChainThreadForAWhile() throws {
        let s = try Scratch(); defer { s.remove() }
        let leaf = try s.dynamicVHD("disk.vhd", mib: 4)
        var model = pattern(4 << 20, seed: 78)
        try s.write(leaf, model, at: 0)
        // Every fast write counts as held up.
        let worker = try ChainWorker(leafPath: leaf, writable: true, stallThreshold: 0)
        defer { try? worker.closeAndWait(); worker.join() }
        let box = ResultCollector()
        worker.submitRead(offset: 0, length: 4 << 20, headerRoom: 0) { box.set($0) }
        _ = box.get()
        let first = pattern(4096, seed: 79), second = pattern(4096, seed: 80)
        let now = DispatchTime.now().uptimeNanoseconds
        guard case .answered(.done)? = worker.writeFast(ByteBuffer(bytes: first), offset: 8192, started: now) else {
            Issue.record("the first write should take the fast path"); return
        }
        model.replaceSubrange(8192..<12288, with: first)
        #expect(worker.statistics().fastWriteStalls == 1)
        // Backing off: the next write takes the queue, and lands all the same.
        #expect(worker.writeFast(ByteBuffer(bytes: second), offset: 65536, started: DispatchTime.now().uptimeNanoseconds) == nil)
        let queued = ResultCollector()
        worker.submitWrite(.write, offset: 65536, length: 4096, { chain in
            try ChainIO.write(chain, ByteBuffer(bytes: second), offset: 65536, fua: false)
        }) { queued.set($0) }
        guard case .done = queued.get() else { Issue.record("queued write failed"); return }
        model.replaceSubrange(65536..<69632, with: second)
        // After the back-off the fast path is open again.
        usleep(UInt32(ChainWorker.stallBackoff / 1000) + 50_000)
        #expect(worker.writeFast(ByteBuffer(bytes: first), offset: 131072, started: DispatchTime.now().uptimeNanoseconds) != nil)
        model.replaceSubrange(131072..<135168, with: first)
        let st = worker.statistics()
        #expect(st.fastWrites == 2 && st.fastWriteStalls == 2 && st.writes == 3)
        try worker.closeAndWait()
        #expect(try s.read(leaf, count: 4 << 20, at: 0) == model)
        #expect(s.problems(leaf).isEmpty)
    }

    @Test func readOnlyChainsNeverWrite() throws {
        let s = try Scratch(); defer { s.remove() }
        let leaf = try s.dynamicVHD("disk.vhd", mib: 4)
        try s.write(leaf, pattern(4 << 20, seed: 76), at: 0)
        let worker = try ChainWorker(leafPath: leaf, writable: false)
        defer { try? worker.closeAndWait(); worker.join() }
        let box = ResultCollector()
        worker.submitRead(offset: 0, length: 4 << 20, headerRoom: 0) { box.set($0) }
        _ = box.get()
        let plan = worker.readMap.plan(offset: 0, length: 4096)
        #expect(plan != nil, "the blocks are known")
        if plan != nil { worker.readMap.finished(bytes: 4096, micros: 0, failed: false) }
        #expect(worker.writeFast(ByteBuffer(bytes: pattern(4096, seed: 77)), offset: 0, started: 0) == nil)
    }

    @Test func fastWritesAreSeenEverywhere() throws {
        let s = try Scratch(); defer { s.remove() }
        var (leaf, model) = try layeredChain(s)
        let dp = try LocalDatapath(s, leaf: leaf); defer { dp.stop() }
        let c = try RawNBDClient(dp.directory.nbdSocket)
        _ = try c.negotiate(dp.export)
        let other = try RawNBDClient(dp.directory.nbdSocket)
        _ = try other.negotiate(dp.export)
        var cookie: UInt64 = 0
        // Learn the map, then write every kind of block: whole-leaf (fast), parent only,
        // mixed, empty; unaligned, across blocks, with FUA; twice, so the second round finds
        // blocks the first made whole (block 3 stays partial).
        cookie += 1
        #expect(read(c, cookie: cookie, offset: 0, length: 8 << 20) == model)
        var writes = 0
        for round in 0..<2 {
            var seed = UInt64(100 + round * 100)
            var list: [(Int, Int, UInt16)] = []
            for k in 0..<64 { list.append((k * 32768 + 4096, 4096, 0)) }                 // block 0
            list += [((2 << 20) - 4096, 8192, 0), ((2 << 20) - 700, 1400, 0)]           // across 0/1
            for k in 0..<4 { list.append(((2 << 20) + k * 524_288, 524_288, 0)) }       // fills block 1
            list += [((4 << 20) + 4096, 4096, 0), ((4 << 20) + 8192, 512, NBD.CommandFlag.fua),
                     ((6 << 20) + 512, 4096, 0), (1 << 20, 4096, NBD.CommandFlag.fua), (123, 1000, 0)]
            for (offset, count, flags) in list {
                seed += 1
                let b = pattern(count, seed: seed)
                cookie += 1
                #expect(write(c, cookie: cookie, offset: UInt64(offset), flags: flags, b), "write at \(offset)")
                model.replaceSubrange(offset..<offset + count, with: b)
                writes += 1
                // Seen at once by this connection and another one, small and whole-block.
                cookie += 1
                #expect(read(c, cookie: cookie, offset: UInt64(offset), length: count) == Array(model[offset..<offset + count]))
            }
            cookie += 1
            #expect(read(other, cookie: cookie, offset: 0, length: 8 << 20) == model, "round \(round)")
        }
        // A FLUSH, then the engine reading the files sees the same bytes and a clean image.
        cookie += 1
        c.request(NBD.Command.flush, cookie: cookie, offset: 0, length: 0)
        #expect(c.reply()?.error == 0)
        #expect(try s.read(leaf, count: 8 << 20, at: 0) == model)
        let st = try dp.control.stats()
        #expect(st.writes == UInt64(writes) && st.errors == 0 && st.bytesWritten > 0)
        dp.stop()
        #expect(try s.read(leaf, count: 8 << 20, at: 0) == model)
        #expect(s.problems(leaf).isEmpty)
    }

    @Test func pausesWhileAClientWritesLoseNothing() throws {
        let s = try Scratch(); defer { s.remove() }
        let leaf = try s.dynamicVHD("disk.vhd", mib: 8)
        let dp = try LocalDatapath(s, leaf: leaf); defer { dp.stop() }
        let slots = 1024    // two 2 MiB blocks: wholly in the leaf once every slot was written
        let writer = try SlotWriter(uri: dp.uri, directory: s.path, slots: slots)
        #expect(writer.waitFor(3000))
        var last = writer.acks().count
        for _ in 0..<20 {
            #expect(try dp.control.send("pause") == "paused")
            usleep(2000)
            #expect(try dp.control.send("unpause") == "running")
            #expect(writer.waitFor(last + 300))
            last = writer.acks().count
        }
        writer.finish()
        let acks = writer.acks()
        var lastAcked = [UInt64](repeating: 0, count: slots)
        for a in acks { lastAcked[a.slot] = max(lastAcked[a.slot], a.i) }
        let st = try dp.control.stats()
        #expect(st.pauses == 20 && st.errors == 0 && st.writes >= UInt64(acks.count))
        dp.stop()
        let bytes = try s.read(leaf, count: slots * 4096, at: 0)
        for slot in 0..<slots {
            #expect(SlotWriter.record(bytes[(slot * 4096)..<(slot * 4096 + 4096)], slot: slot) == lastAcked[slot], "slot \(slot)")
        }
        #expect(s.problems(leaf).isEmpty)
    }
}

/// One result handed from the chain thread to the test.
final class ResultCollector: @unchecked Sendable {
    private let condition = NSCondition()
    private var value: NBDCommandResult?

    /// Stores the result.
    func set(_ r: NBDCommandResult) { condition.withLock { value = r; condition.broadcast() } }

    /// Waits for the result.
    func get() -> NBDCommandResult {
        condition.withLock {
            while value == nil { condition.wait() }
            return value!
        }
    }
}
