import Foundation
import SMCore
import Testing
import VHD

/// The control socket: stats, pause (requests held, chain closed), unpause (possibly onto a new
/// leaf), close.
@Suite struct DatapathControlTests {
    @Test func statsCountTraffic() throws {
        let s = try Scratch(); defer { s.remove() }
        let leaf = try s.dynamicVHD("disk.vhd", mib: 8)
        let dp = try LocalDatapath(s, leaf: leaf); defer { dp.stop() }
        #expect(dp.control.ping())
        let src = try s.file("src.raw", pattern(8 << 20, seed: 31))
        try Command.check("nbdcopy", ["--flush", src, dp.uri])
        try Command.check("nbdcopy", [dp.uri, s.path + "/back.raw"])
        let st = try dp.control.stats()
        #expect(st.bytesWritten == 8 << 20)
        #expect(st.bytesRead == 8 << 20)
        #expect(st.writes > 0 && st.reads > 0 && st.flushes > 0 && st.blockStatus > 0)
        #expect(st.requests >= st.writes + st.reads + st.flushes + st.blockStatus)
        #expect(st.latencyMaxMicros >= st.latencyMeanMicros && st.latencyMeanMicros > 0)
        #expect(st.size == 8 << 20 && !st.paused && !st.readOnly && st.leaf == StorePath.basename(leaf), "the leaf is a volume name, not a path")
        #expect(throws: DatapathError.self) { try dp.control.send("frobnicate") }
    }

    @Test func pausedRequestsWaitAndRunInOrderAfterUnpause() throws {
        let s = try Scratch(); defer { s.remove() }
        let leaf = try s.dynamicVHD("disk.vhd", mib: 8)
        let dp = try LocalDatapath(s, leaf: leaf); defer { dp.stop() }
        let c = try RawNBDClient(dp.directory.nbdSocket)
        _ = try c.negotiate(dp.export)
        #expect(try dp.control.send("pause") == "paused")
        #expect(try dp.control.stats().paused)
        // Three writes to the same sector and a read, sent while paused.
        for v in 1...3 { c.request(NBD.Command.write, cookie: UInt64(v), offset: 4096, length: 512, payload: [UInt8](repeating: UInt8(v), count: 512)) }
        c.request(NBD.Command.read, cookie: 4, offset: 4096, length: 512)
        var tv = timeval(tv_sec: 0, tv_usec: 300_000)
        setsockopt(c.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        #expect(c.read(1) == nil, "no reply while paused")
        #expect(try eventually { try dp.control.stats().queued == 4 })
        tv.tv_sec = 10
        setsockopt(c.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        #expect(try dp.control.send("unpause") == "running")
        let replies = (0..<4).compactMap { _ in c.reply() }
        #expect(replies.map(\.cookie) == [1, 2, 3, 4])
        #expect(replies.allSatisfy { $0.error == 0 })
        #expect(Array(replies[3].payload.dropFirst(8)) == [UInt8](repeating: 3, count: 512), "the last write wins")
    }

    @Test func unpauseOntoANewLeafAfterASnapshot() throws {
        let s = try Scratch(); defer { s.remove() }
        let leaf = try s.dynamicVHD("disk.vhd", mib: 8)
        let dp = try LocalDatapath(s, leaf: leaf); defer { dp.stop() }
        let before = try s.file("a.raw", pattern(1 << 20, seed: 41))
        try Command.check("nbdcopy", ["--flush", before, dp.uri])
        _ = try dp.control.send("pause")
        // What a snapshot does: the leaf becomes the base, a new empty child takes its name.
        let base = s.path + "/base.vhd"
        try s.provider.rename(leaf, to: base)
        try Snapshot.create(child: leaf, parent: base, provider: s.provider)
        _ = try dp.control.send("unpause " + StorePath.basename(leaf))
        let after = pattern(1 << 20, seed: 42)
        let c = try RawNBDClient(dp.directory.nbdSocket)
        _ = try c.negotiate(dp.export)
        c.request(NBD.Command.write, flags: NBD.CommandFlag.fua, cookie: 1, offset: 0, length: 1 << 20, payload: after)
        #expect(c.reply()?.error == 0)
        dp.stop()
        #expect(try s.read(base, count: 1 << 20, at: 0) == Array(try Data(contentsOf: URL(fileURLWithPath: before))))
        #expect(try s.read(leaf, count: 1 << 20, at: 0) == after)
        #expect(s.problems(base).isEmpty && s.problems(leaf).isEmpty)
    }

    @Test func failedUnpauseStaysPausedUntilALeafOpens() throws {
        let s = try Scratch(); defer { s.remove() }
        let leaf = try s.dynamicVHD("disk.vhd", mib: 8)
        let dp = try LocalDatapath(s, leaf: leaf); defer { dp.stop() }
        _ = try dp.control.send("pause")
        #expect(throws: DatapathError.self) { try dp.control.send("unpause missing.vhd") }
        #expect(throws: DatapathError.self, "paths are refused: volumes are named within the container") {
            try dp.control.send("unpause " + leaf)
        }
        #expect(try dp.control.stats().paused)
        #expect(try dp.control.send("unpause") == "running")
        #expect(!(try dp.control.stats().paused))
    }

    /// What the collector's relink does under a running datapath: the leaf is reparented from
    /// a node onto the node's parent (holding the node's data now), `refresh` reopens the chain
    /// between two requests, the node can go; `flush` and `pause nosync` answer as documented.
    @Test func refreshAfterARelinkAndTheOtherControls() throws {
        let s = try Scratch(); defer { s.remove() }
        let grand = try s.dynamicVHD("grand.vhd", mib: 8)
        let node = s.path + "/node.vhd", leaf = s.path + "/leaf.vhd"
        try Snapshot.create(child: node, parent: grand, provider: s.provider)
        let data = pattern(1 << 20, seed: 51)
        try s.write(node, data, at: 0)
        try Snapshot.create(child: leaf, parent: node, provider: s.provider)
        let dp = try LocalDatapath(s, leaf: leaf); defer { dp.stop() }
        #expect(try dp.control.send("flush") == "flushed")
        // The collector's merge and relink, the datapath running.
        try Coalesce.run(child: node, provider: s.provider)
        try Relink.run(child: leaf, newParent: grand, provider: s.provider)
        #expect(throws: DatapathError.self) { try dp.control.send("refresh " + leaf) }
        #expect(throws: DatapathError.self) { try dp.control.send("refresh missing.vhd") }
        #expect(try dp.control.send("refresh " + StorePath.basename(leaf)) == "running")
        try s.provider.remove(node)
        try Command.check("nbdcopy", [dp.uri, s.path + "/back.raw"])
        #expect(Array(try Data(contentsOf: URL(fileURLWithPath: s.path + "/back.raw")).prefix(1 << 20)) == data)
        let st = try dp.control.stats()
        #expect(st.refreshes == 1 && !st.paused && st.pauses == 0)
        #expect(try dp.control.send("pause nosync") == "paused")
        #expect(throws: DatapathError.self) { try dp.control.send("pause sideways") }
        #expect(try dp.control.send("unpause") == "running")
    }

    @Test func closeEndsTheDatapath() throws {
        let s = try Scratch(); defer { s.remove() }
        let leaf = try s.dynamicVHD("disk.vhd", mib: 8)
        let dp = try LocalDatapath(s, leaf: leaf)
        let c = try RawNBDClient(dp.directory.nbdSocket)
        _ = try c.negotiate(dp.export)
        #expect(try dp.control.send("close") == "closing")
        dp.datapath.waitUntilClosed()
        #expect(c.closedByServer())
        #expect(access(dp.directory.nbdSocket, F_OK) != 0 && access(dp.directory.controlSocket, F_OK) != 0)
    }
}
