import Testing
@testable import VHD

private let mib = 1 << 20

/// Writes in two halves (`VHDImage.planWrite`, the data sent by the caller, then
/// `finishPlannedWrite`), as the data path runs them for NFS files with several in flight.
@Suite struct PlannedWriteTests {
    /// Sends the data of `pieces` of `data` to the leaf's store.
    static func send(_ image: VHDImage, _ pieces: [VHDImage.PlannedSectors], _ data: [UInt8]) throws {
        try data.withUnsafeBytes { raw in
            for p in pieces {
                try image.store.write(UnsafeRawBufferPointer(rebasing: raw[p.bufferOffset..<p.bufferOffset + p.count * 512]),
                                      at: p.storeOffset)
            }
        }
    }

    /// A writable snapshot `/sr/leaf.vhd` of an 8 MiB `/sr/base.vhd` whose first `filled` bytes
    /// are 0x11 (returned).
    static func leafOverFilledBase(_ p: MemoryStoreProvider, filled: Int) throws -> (VHDChain, [UInt8]) {
        try Create.dynamic(at: "/sr/base.vhd", size: UInt64(8 * mib), provider: p)
        let old = [UInt8](repeating: 0x11, count: filled)
        try VHDChain(path: "/sr/base.vhd", provider: p, writable: true).write(old, at: 0)
        try Snapshot.create(child: "/sr/leaf.vhd", parent: "/sr/base.vhd", provider: p)
        return (try VHDChain(path: "/sr/leaf.vhd", provider: p, writable: true), old)
    }

    /// Until finished, a planned write is invisible (the parent's bytes read through); once
    /// finished, it reads back (two writes sharing a block, finished together); the image
    /// checks clean.
    @Test func invisibleUntilFinishedThenPresent() throws {
        let p = MemoryStoreProvider()
        let (chain, old) = try Self.leafOverFilledBase(p, filled: 4 * mib)
        let a = [UInt8](repeating: 0xaa, count: 64 << 10), b = [UInt8](repeating: 0xbb, count: 3 * mib)
        let pa = try chain.leaf.planWrite(sector: 128, count: a.count / 512)             // block 0
        let pb = try chain.leaf.planWrite(sector: UInt64(mib / 512), count: b.count / 512) // blocks 0 and 1, across
        #expect(pb.map(\.block) == [0, 1] && pb[0].count == mib / 512 && pb[1].bufferOffset == mib)
        try Self.send(chain.leaf, pb, b)
        try Self.send(chain.leaf, pa, a)
        #expect(try chain.read(count: 4 * mib, at: 0) == old, "nothing visible before the bits are set")
        try chain.leaf.finishPlannedWrite(pa + pb)
        var want = old
        want.replaceSubrange(mib..<mib + b.count, with: b)
        want.replaceSubrange(128 * 512..<128 * 512 + a.count, with: a)
        #expect(try chain.read(count: 4 * mib, at: 0) == want)
        try chain.flush()
        let reports = Check.run(path: "/sr/leaf.vhd", provider: p)
        #expect(reports.allSatisfy { $0.valid }, "\(reports)")
        #expect(try VHDChain(path: "/sr/leaf.vhd", provider: p).read(count: 4 * mib, at: 0) == want)
    }

    /// A planned write past the end, into a read-only image, or finished for a block that is
    /// not allocated: a typed error and nothing changed.
    @Test func badPlansAreRefused() throws {
        let p = MemoryStoreProvider()
        try Create.dynamic(at: "/sr/d.vhd", size: UInt64(4 * mib), provider: p)
        let before = p.contents
        let image = try VHDChain(path: "/sr/d.vhd", provider: p, writable: true).leaf
        #expect(throws: VHDError.self) { try image.planWrite(sector: UInt64(4 * mib / 512), count: 1) }
        #expect(throws: VHDError.self) {
            try image.finishPlannedWrite([VHDImage.PlannedSectors(block: 1, first: 0, count: 1, storeOffset: 0, bufferOffset: 0)])
        }
        #expect(p.contents == before)
        let readOnly = try VHDChain(path: "/sr/d.vhd", provider: p).leaf
        #expect(throws: VHDError.self) { try readOnly.planWrite(sector: 0, count: 1) }
    }

    /// A crash at every store call of planned writes (two in flight, the second's data sent
    /// first, finished together, then more): after recovery every finished write reads back,
    /// the unfinished ones read old or new per sector, and the image checks clean.
    @Test(arguments: CrashOrderingTests.modes)
    func aCrashAnywhereKeepsEveryFinishedWrite(mode: CrashBudget.Mode) throws {
        try Self.crashAnywhere(mode) { leaf, pieces in try leaf.finishPlannedWrite(pieces) }
    }

    /// The same with the bitmaps written by the caller (`presentPlannedWrite`, as the data path
    /// sends them on an NFS or iSCSI pipeline), in reverse order: a crash at every store call
    /// keeps every write whose bitmaps were written, and the image checks clean.
    @Test(arguments: CrashOrderingTests.modes)
    func aCrashAnywhereKeepsEveryWriteWhoseBitmapsTheCallerWrote(mode: CrashBudget.Mode) throws {
        try Self.crashAnywhere(mode) { leaf, pieces in
            let bitmaps = try leaf.presentPlannedWrite(pieces)
            for m in bitmaps.reversed() { try leaf.store.write(m.bytes, at: m.storeOffset) }
            leaf.plannedBitmapsWritten(bitmaps)
        }
    }

    /// Bitmaps the caller writes: a block they fill reaches the batmap only at the next commit
    /// (a batmap behind the bitmaps checks clean); bits whose bitmap was never written are
    /// forgotten by `dropCaches` (the parent's bytes read through again).
    @Test func callerWrittenBitmapsLeaveTheBatmapToTheNextCommit() throws {
        let p = MemoryStoreProvider()
        let (chain, old) = try Self.leafOverFilledBase(p, filled: 8 * mib)
        let leaf = chain.leaf
        #expect(leaf.batmapHeader != nil)
        let whole = [UInt8](repeating: 0xaa, count: 2 * mib)
        let plan = try leaf.planWrite(sector: 0, count: whole.count / 512)
        try Self.send(leaf, plan, whole)
        let bitmaps = try leaf.presentPlannedWrite(plan)
        #expect(bitmaps.map(\.block) == [0])
        for m in bitmaps { try leaf.store.write(m.bytes, at: m.storeOffset) }
        leaf.plannedBitmapsWritten(bitmaps)
        #expect(try VHDChain(path: "/sr/leaf.vhd", provider: p).leaf.batmapSaysFull(0) == false, "the batmap waits for a commit")
        try chain.flush()
        #expect(try VHDChain(path: "/sr/leaf.vhd", provider: p).leaf.batmapSaysFull(0))
        // A write whose bitmap never reaches the store: forgotten after dropCaches.
        let part = [UInt8](repeating: 0xbb, count: 64 << 10)
        let lost = try leaf.planWrite(sector: UInt64(4 * mib / 512), count: part.count / 512)
        try Self.send(leaf, lost, part)
        #expect(try leaf.presentPlannedWrite(lost).count == 1)
        leaf.dropCaches()
        var want = old
        want.replaceSubrange(0..<whole.count, with: whole)
        #expect(try chain.read(count: 8 * mib, at: 0) == want)
        try chain.flush()
        let reports = Check.run(path: "/sr/leaf.vhd", provider: p)
        #expect(reports.allSatisfy { $0.valid }, "\(reports)")
    }

    /// Planned writes in three batches with a crash at every store call of `mode`, each batch
    /// finished by `finish`; then the checks of `aCrashAnywhereKeepsEveryFinishedWrite`.
    static func crashAnywhere(_ mode: CrashBudget.Mode,
                              finish: @escaping (VHDImage, [VHDImage.PlannedSectors]) throws -> Void) throws {
        let setup = MemoryStoreProvider()
        var rng = SplitMix64(seed: 77)
        let size = 8 * mib
        try Create.dynamic(at: "/sr/base.vhd", size: UInt64(size), provider: setup)
        try VHDChain(path: "/sr/base.vhd", provider: setup, writable: true).write(rng.bytes(4 * mib), at: 0)
        try Snapshot.create(child: "/sr/leaf.vhd", parent: "/sr/base.vhd", provider: setup)
        let initial = setup.contents
        let batches: [[(offset: Int, data: [UInt8])]] = [
            [(mib + 4096, rng.bytes(256 << 10)), (3 * mib - 8192, rng.bytes(16384))],   // two in flight, one across blocks
            [(6 * mib, rng.bytes(2 * mib))],                                              // a whole new block
            [(mib + 4096, rng.bytes(4096)), (0, rng.bytes(512))],                         // again into block 0
        ]
        var states = [try VHDChain(path: "/sr/leaf.vhd", provider: setup).read(count: size, at: 0)]
        for batch in batches {
            var s = states.last!
            for w in batch { s.replaceSubrange(w.offset..<w.offset + w.data.count, with: w.data) }
            states.append(s)
        }
        var finished = 0
        runAtEveryCrashPoint(mode, initial: initial, "planned writes") { p in
            finished = 0
            let c = try VHDChain(path: "/sr/leaf.vhd", provider: p, writable: true)
            for (i, batch) in batches.enumerated() {
                let plans = try batch.map { try c.leaf.planWrite(sector: UInt64($0.offset / 512), count: $0.data.count / 512) }
                for (plan, w) in zip(plans, batch).reversed() { try Self.send(c.leaf, plan, w.data) }
                try finish(c.leaf, plans.flatMap { $0 })
                if !p.budget.crashed { finished = i + 1 }
            }
        } verify: { crash in
            let s = crash.survivors
            try ensure(sameBytes(s.bytes("/sr/base.vhd"), initial["/sr/base.vhd"]), "the parent was modified")
            _ = try recover("/sr/leaf.vhd", in: s)
            try checkChain("/sr/leaf.vhd", s)
            let got = try VHDChain(path: "/sr/leaf.vhd", provider: s).read(count: size, at: 0)
            if finished == batches.count {
                if let m = Content.mismatch(got, states[finished]) { throw TestFailure("all finished, content: \(m)") }
            } else if let bad = Content.firstSectorMatchingNeither(got, states[finished], states[finished + 1]) {
                throw TestFailure("\(finished) batches finished; sector \(bad) is neither their state nor the batch in flight")
            }
        }
    }
}
