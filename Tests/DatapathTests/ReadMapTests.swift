import Foundation
import NIOCore
@testable import SMCore
import Testing
import VHD

/// READs answered from the read map (planned on the event loop, copied from the page cache or
/// sent with sendfile) see every write answered before them, and survive pause and unpause onto
/// a new leaf.
@Suite struct ReadMapTests {
    /// Reads `length` bytes at `offset` and returns the data (structured or simple replies).
    func read(_ c: RawNBDClient, structured: Bool, cookie: UInt64, offset: UInt64, length: Int) -> [UInt8]? {
        c.request(NBD.Command.read, cookie: cookie, offset: offset, length: UInt32(length))
        guard let r = c.reply(readLength: structured ? 0 : length), r.cookie == cookie, r.error == 0 else { return nil }
        return structured ? Array(r.payload.dropFirst(8)) : r.payload
    }

    /// Writes `bytes` at `offset` and waits for the reply.
    func write(_ c: RawNBDClient, cookie: UInt64, offset: UInt64, _ bytes: [UInt8]) -> Bool {
        c.request(NBD.Command.write, cookie: cookie, offset: offset, length: UInt32(bytes.count), payload: bytes)
        guard let r = c.reply() else { return false }
        return r.cookie == cookie && r.error == 0
    }

    /// While a write waits for the chain thread, READs of other bytes still come from the map;
    /// a READ overlapping it takes the queue behind it and sees what it wrote.
    @Test func onlyReadsOverlappingAPendingWriteWaitForIt() throws {
        let s = try Scratch(); defer { s.remove() }
        let leaf = try s.dynamicVHD("disk.vhd", mib: 8)
        var model = pattern(8 << 20, seed: 55)
        try s.write(leaf, model, at: 0)
        let worker = try ChainWorker(leafPath: leaf, writable: true)
        defer { try? worker.closeAndWait(); worker.join() }
        let learnt = ResultCollector()
        worker.submitRead(offset: 0, length: 8 << 20, headerRoom: 0) { learnt.set($0) }
        _ = learnt.get()
        // Hold the chain thread, then queue a write behind the held job.
        let gate = DispatchSemaphore(value: 0)
        let held = ResultCollector(), written = ResultCollector()
        worker.submit(.other, bytes: 0, { _ in gate.wait(); return .done }) { held.set($0) }
        let bytes = pattern(8192, seed: 56)
        worker.submitWrite(.write, offset: 3 << 20, length: 8192, { chain in
            try ChainIO.write(chain, ByteBuffer(bytes: bytes), offset: 3 << 20, fua: true)
        }) { written.set($0) }
        // Other bytes, even in the same block, plan from the map; the written ones do not.
        for (offset, length, fromMap) in [(0, 4096, true), ((3 << 20) + 8192, 4096, true), ((3 << 20) - 4096, 4096, true),
                                          ((3 << 20) + 4096, 512, false), ((3 << 20) - 512, 1024, false), (0, 8 << 20, false)] {
            let plan = worker.readMap.plan(offset: UInt64(offset), length: length)
            #expect((plan != nil) == fromMap, "read at \(offset), \(length) bytes")
            if let plan {
                var out = [UInt8](repeating: 0, count: length)
                try out.withUnsafeMutableBytes { try plan.execute(into: $0) }
                #expect(out == Array(model[offset..<offset + length]))
                worker.readMap.finished(bytes: length, micros: 0, failed: false)
            }
        }
        // A READ of the written bytes queued now runs after the write and sees it.
        let after = ResultCollector()
        worker.submitRead(offset: 3 << 20, length: 8192, headerRoom: 0) { after.set($0) }
        gate.signal()
        _ = held.get()
        guard case .done = written.get() else { Issue.record("the write failed"); return }
        model.replaceSubrange((3 << 20)..<((3 << 20) + 8192), with: bytes)
        guard case var .data(got, _) = after.get() else { Issue.record("the read failed"); return }
        #expect(got.readBytes(length: 8192) == bytes)
        #expect(worker.readMap.plan(offset: 3 << 20, length: 8192) != nil, "nothing pending any more")
        worker.readMap.finished(bytes: 8192, micros: 0, failed: false)
        try worker.closeAndWait()
        #expect(try s.read(leaf, count: 8 << 20, at: 0) == model)
    }

    @Test func readsFromTheMapFollowWritesAndReopens() throws {
        let s = try Scratch(); defer { s.remove() }
        let leaf = try s.dynamicVHD("disk.vhd", mib: 8)
        var model = [UInt8](repeating: 0, count: 8 << 20)
        let a = pattern(4 << 20, seed: 51)
        try s.write(leaf, a, at: 0)
        model.replaceSubrange(0..<a.count, with: a)
        // The data now lives in the parent; the leaf starts empty.
        let base = s.path + "/base.vhd"
        try s.provider.rename(leaf, to: base)
        try Snapshot.create(child: leaf, parent: base, provider: s.provider)
        let dp = try LocalDatapath(s, leaf: leaf); defer { dp.stop() }
        let c = try RawNBDClient(dp.directory.nbdSocket)
        _ = try c.negotiate(dp.export)
        let simple = try RawNBDClient(dp.directory.nbdSocket)
        _ = try simple.negotiate(dp.export, structured: false, metaContext: false)
        var cookie: UInt64 = 0
        var reads: UInt64 = 1       // the one sent behind a WRITE
        func check(_ what: Comment) {
            // Large (sendfile when cached), small, across blocks, unaligned; each twice (the
            // first may go through the chain thread, the second comes from the map).
            for (offset, length) in [(0, 1 << 20), (8192, 4096), ((2 << 20) - 4096, 64 << 10), (6 << 20, 2 << 20), (1000, 3000)] {
                for client in [(c, true), (simple, false)] {
                    for _ in 0..<2 {
                        cookie += 1
                        reads += 1
                        let got = read(client.0, structured: client.1, cookie: cookie, offset: UInt64(offset), length: length)
                        #expect(got == Array(model[offset..<offset + length]), what)
                    }
                }
            }
        }
        check("parent data and zeros")
        // A write over parent data, and one into a block no image holds.
        for (offset, seed) in [(8192, 52), ((6 << 20) + 512, 53), ((2 << 20) - 512, 54)] {
            let b = pattern(offset % 4096 == 0 ? 4096 : 1024, seed: UInt64(seed))
            cookie += 1
            #expect(write(c, cookie: cookie, offset: UInt64(offset), b))
            model.replaceSubrange(offset..<offset + b.count, with: b)
        }
        check("after writes")
        // A READ sent right behind a WRITE (without waiting for its reply) sees it.
        let d = pattern(4096, seed: 55)
        c.request(NBD.Command.write, cookie: 1000, offset: 1 << 20, length: 4096, payload: d)
        c.request(NBD.Command.read, cookie: 1001, offset: 1 << 20, length: 4096)
        let replies = (0..<2).compactMap { _ in c.reply() }
        model.replaceSubrange((1 << 20)..<(1 << 20) + 4096, with: d)
        #expect(replies.first { $0.cookie == 1001 }.map { Array($0.payload.dropFirst(8)) } == d)
        // Pause, snapshot again, unpause onto the new leaf: the map starts over.
        #expect(try dp.control.send("pause") == "paused")
        let mid = s.path + "/mid.vhd"
        try s.provider.rename(leaf, to: mid)
        try Snapshot.create(child: leaf, parent: mid, provider: s.provider)
        #expect(try dp.control.send("unpause " + StorePath.basename(leaf)) == "running")
        check("after a snapshot")
        let e = pattern(64 << 10, seed: 56)
        cookie += 1
        #expect(write(simple, cookie: cookie, offset: 0, e))
        model.replaceSubrange(0..<e.count, with: e)
        check("after writing the new leaf")
        let st = try dp.control.stats()
        #expect(st.reads == reads && st.writes == 5 && st.errors == 0, "every request counted once")
    }
}
