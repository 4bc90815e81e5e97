import Testing
@testable import VHD

private let mib = 1 << 20

/// One simulated crash and what a restarted process finds.
struct Crash {
    let mode: CrashBudget.Mode
    /// Mutating calls that completed before the crash.
    let point: Int
    /// Mutating calls the operation makes when not interrupted.
    let total: Int
    /// What the interrupted operation threw, if anything.
    let error: (any Error)?
    /// The surviving bytes, in plain memory stores.
    let survivors: MemoryStoreProvider
    /// Whether the operation ran to completion (no crash at all).
    var complete: Bool { point == total }
}

/// Runs `operation` once without a crash to count its mutating calls, then once per crash point
/// 0...total from the same initial stores, handing each outcome to `verify`. Every failing crash
/// point is collected and reported in one issue (the first message in full).
@discardableResult
func runAtEveryCrashPoint(_ mode: CrashBudget.Mode, initial: [String: [UInt8]], _ what: String,
                          operation: (CrashingProvider) throws -> Void,
                          verify: (Crash) throws -> Void) -> Int {
    let measure = CrashingProvider(budget: CrashBudget(mode: mode), contents: initial)
    do { try operation(measure) } catch {
        Issue.record("\(what): the uninterrupted operation failed: \(error)")
        return 0
    }
    let total = measure.budget.calls
    #expect(total > 0, "\(what) made no mutating call")
    var failures: [(Int, String)] = []
    for n in 0...total {
        let provider = CrashingProvider(budget: CrashBudget(mode: mode, limit: n), contents: initial)
        var error: (any Error)? = nil
        do { try operation(provider) } catch let e { error = e }
        do {
            if n == total {
                try ensure(error == nil, "the operation failed with its full budget: \(error!)")
                try ensure(provider.budget.calls == total, "the operation made \(provider.budget.calls) calls, then \(total)")
            } else {
                try ensure(provider.budget.crashed, "the operation made only \(provider.budget.calls) calls")
                if mode == .throwing {
                    try ensure(error is SimulatedCrash, "the failed write was not reported: the operation \(error.map { "threw \($0)" } ?? "returned normally")")
                }
            }
            try verify(Crash(mode: mode, point: n, total: total, error: error, survivors: provider.survivors()))
        } catch {
            failures.append((n, "\(error)"))
        }
    }
    if let first = failures.first {
        Issue.record("""
            \(what), \(mode) crash: \(failures.count) of \(total + 1) crash points fail (points \(failures.map(\.0))); \
            first, after \(first.0) of \(total) calls: \(first.1)
            """)
    }
    return total
}

/// What recovery did to one image.
struct Recovery {
    /// Problems check reported right after the crash.
    var before: [String]
    /// Whether repair ran.
    var repaired: Bool
}

/// What SM does after a crash: check the image; when check complains or a resize journal was left,
/// repair it (which also replays the journal); then the image must check clean.
@discardableResult
func recover(_ path: String, in p: MemoryStoreProvider) throws -> Recovery {
    let before = Check.run(path: path, provider: p).flatMap(\.problems)
    guard !before.isEmpty || p.exists(path + ".resize-journal") else { return Recovery(before: [], repaired: false) }
    do { try Repair.run(path: path, provider: p) } catch {
        throw TestFailure("repair of \(path) failed: \(error) (check said: \(before))")
    }
    let after = Check.run(path: path, provider: p).flatMap(\.problems)
    try ensure(after.isEmpty, "\(path) still fails check after repair: \(after) (before: \(before))")
    try ensure(!p.exists(path + ".resize-journal"), "resize journal left after repair")
    return Recovery(before: before, repaired: true)
}

/// Check of an image and all its ancestors.
func checkChain(_ path: String, _ p: MemoryStoreProvider) throws {
    var o = Check.Options()
    o.parents = true
    let reports = Check.run(path: path, provider: p, options: o)
    try ensure(reports.allSatisfy(\.valid), "check of \(path): \(reports.filter { !$0.valid })")
}

extension MemoryStoreProvider {
    func bytes(_ path: String) -> [UInt8]? { (stores[StorePath.normalize(path)] as? MemoryStore)?.bytes }
    var contents: [String: [UInt8]] { stores.mapValues { ($0 as! MemoryStore).bytes } }
}

@Suite struct CrashOrderingTests {
    static let modes = CrashBudget.Mode.allCases

    /// The harness itself: calls are counted across stores and the provider, the call past the
    /// budget is dropped, thrown or torn, and survivors hold exactly the applied bytes.
    @Test(arguments: modes)
    func budgetDropsEverythingAfterTheLimit(mode: CrashBudget.Mode) throws {
        let p = CrashingProvider(budget: CrashBudget(mode: mode, limit: 2), contents: ["/a": [UInt8](repeating: 1, count: 2048)])
        let a = try p.open("/a", writable: true)
        try a.write([UInt8](repeating: 2, count: 512), at: 0)      // call 1
        let b = try p.create("/b")                                  // call 2
        #expect(!p.budget.crashed)
        var threw = false
        do { try a.write([UInt8](repeating: 3, count: 2048), at: 0) } catch { threw = true } // call 3: crash
        #expect(threw == (mode == .throwing))
        #expect(p.budget.crashed)
        do { try b.write([UInt8](repeating: 4, count: 512), at: 0) } catch { #expect(mode == .throwing) }
        do { try a.resize(to: 10) } catch { #expect(mode == .throwing) }
        do { try p.remove("/a") } catch { #expect(mode == .throwing) }
        #expect(p.budget.calls == 6)
        let s = p.survivors()
        var expected = [UInt8](repeating: 2, count: 512) + [UInt8](repeating: 1, count: 1536)
        if mode == .torn { expected.replaceSubrange(0..<1024, with: repeatElement(3, count: 1024)) }
        #expect(s.bytes("/a") == expected)
        #expect(s.bytes("/b") == [])
    }

    // MARK: - (a) writes that allocate blocks

    /// VHDChain writes (through VHDImage.write) that allocate new blocks, fill existing ones,
    /// straddle blocks, complete a block (batmap bit) and read-modify-write partial sectors, in a
    /// dynamic image and in a differencing child. After a crash at any point, every write that
    /// returned reads back, the write in flight reads old or new per sector, and the image checks
    /// clean (after repair) and takes new writes.
    @Test(arguments: modes, [DiskType.dynamic, DiskType.differencing])
    func writesAllocatingBlocks(mode: CrashBudget.Mode, kind: DiskType) throws {
        let setup = MemoryStoreProvider()
        var rng = SplitMix64(seed: 31)
        let size = 12 * mib
        let leaf: String
        var others: [String] = []
        if kind == .dynamic {
            leaf = "/sr/d.vhd"
            try Create.dynamic(at: leaf, size: UInt64(size), provider: setup)
            let c = try VHDChain(path: leaf, provider: setup, writable: true)
            try c.write(rng.bytes(2 * mib), at: 0)
            try c.write(rng.bytes(200 * 512), at: UInt64(4 * mib + 100 * 512))
        } else {
            try Create.dynamic(at: "/sr/base.vhd", size: UInt64(size), provider: setup)
            let b = try VHDChain(path: "/sr/base.vhd", provider: setup, writable: true)
            try b.write(rng.bytes(6 * mib), at: 0)
            try b.write(rng.bytes(2 * mib), at: UInt64(8 * mib))
            leaf = "/sr/child.vhd"
            try Snapshot.create(child: leaf, parent: "/sr/base.vhd", provider: setup)
            try VHDChain(path: leaf, provider: setup, writable: true).write(rng.bytes(64 * 512), at: 0)
            others = ["/sr/base.vhd"]
        }
        let initial = setup.contents
        var states = [try VHDChain(path: leaf, provider: setup).read(count: size, at: 0)]
        let writes: [(offset: Int, data: [UInt8])] = [
            (2 * mib + 8192, rng.bytes(4096)),        // new block 1
            (4 * mib + 777, rng.bytes(3000)),          // block 2, unaligned (existing in the dynamic image)
            (8 * mib - 5000, rng.bytes(9000)),         // across blocks 3 and 4, both new
            (10 * mib, rng.bytes(2 * mib)),            // all of new block 5 (batmap bit)
            (100, rng.bytes(100)),                     // inside block 0, partial sector
            (2 * mib, rng.bytes(8192)),                // block 1 again
            (2 * mib + 12288, rng.bytes(2 * mib - 12288)), // completes block 1 (batmap bit on an existing block)
        ]
        for w in writes {
            var s = states.last!
            s.replaceSubrange(w.offset..<w.offset + w.data.count, with: w.data)
            states.append(s)
        }
        var acked = 0
        runAtEveryCrashPoint(mode, initial: initial, "\(kind) writes") { p in
            acked = 0
            let c = try VHDChain(path: leaf, provider: p, writable: true)
            for (i, w) in writes.enumerated() {
                try c.write(w.data, at: UInt64(w.offset))
                if !p.budget.crashed { acked = i + 1 }
            }
        } verify: { crash in
            let s = crash.survivors
            for o in others { try ensure(sameBytes(s.bytes(o), initial[o]), "\(o) was modified") }
            let rec = try recover(leaf, in: s)
            if crash.complete { try ensure(!rec.repaired, "needed repair without a crash: \(rec.before)") }
            try checkChain(leaf, s)
            let got = try VHDChain(path: leaf, provider: s).read(count: size, at: 0)
            if acked == writes.count {
                if let m = Content.mismatch(got, states[acked]) { throw TestFailure("all \(acked) writes returned, content: \(m)") }
            } else if let bad = Content.firstSectorMatchingNeither(got, states[acked], states[acked + 1]) {
                let old = Content.sectorEqual(got, states[0], bad)
                throw TestFailure("\(acked) writes returned; sector \(bad) (block \(bad / 4096)) is neither the acknowledged "
                                  + "state nor the write in flight\(old ? " (it holds the initial content: an acknowledged write was lost)" : "")")
            }
            // The recovered image takes new writes.
            let after = try VHDChain(path: leaf, provider: s, writable: true)
            let more = [UInt8](repeating: 0x5a, count: 1500)
            try after.write(more, at: UInt64(6 * mib + 300))
            try ensure(try VHDChain(path: leaf, provider: s).read(count: 1500, at: UInt64(6 * mib + 300)) == more, "write after recovery")
            try checkChain(leaf, s)
        }
    }

    // MARK: - (b) snapshot

    /// Snapshot.create: the parent chain is never touched; the child either does not exist,
    /// cannot be opened (and is discarded), or reads exactly as the parent (zero-extended).
    @Test(arguments: modes)
    func snapshot(mode: CrashBudget.Mode) throws {
        let setup = MemoryStoreProvider()
        var rng = SplitMix64(seed: 77)
        try Create.dynamic(at: "/sr/base.vhd", size: UInt64(8 * mib), provider: setup)
        try VHDChain(path: "/sr/base.vhd", provider: setup, writable: true).write(rng.bytes(3 * mib), at: 1000)
        try Snapshot.create(child: "/sr/mid.vhd", parent: "/sr/base.vhd", provider: setup)
        try VHDChain(path: "/sr/mid.vhd", provider: setup, writable: true).write(rng.bytes(5000), at: UInt64(5 * mib))
        let initial = setup.contents
        let parentContent = Content.resized(try VHDChain(path: "/sr/mid.vhd", provider: setup).read(count: 8 * mib, at: 0), to: 12 * mib)
        let child = "/sr/snap.vhd"
        var options = Snapshot.Options()
        options.size = UInt64(12 * mib)
        options.fastResizeLimit = UInt64(64 * mib)
        runAtEveryCrashPoint(mode, initial: initial, "snapshot") { p in
            let r = try Snapshot.create(child: child, parent: "/sr/mid.vhd", provider: p, options: options)
            try ensure(r.parentPath == "/sr/mid.vhd", "linked to \(r.parentPath)")
        } verify: { crash in
            let s = crash.survivors
            for (path, bytes) in initial { try ensure(sameBytes(s.bytes(path), bytes), "\(path) was modified") }
            try checkChain("/sr/mid.vhd", s)
            guard s.exists(child) else {
                try ensure(!crash.complete, "no child after a complete snapshot")
                return
            }
            guard (try? VHDChain(path: child, provider: s)) != nil else {
                try ensure(!crash.complete, "the complete snapshot does not open")
                try s.remove(child) // an unusable leftover is discarded
                try checkChain("/sr/mid.vhd", s)
                return
            }
            let rec = try recover(child, in: s)
            if crash.complete { try ensure(!rec.repaired, "needed repair without a crash: \(rec.before)") }
            try checkChain(child, s)
            let c = try VHDChain(path: child, provider: s)
            try ensure(c.paths == [child, "/sr/mid.vhd", "/sr/base.vhd"], "chain \(c.paths)")
            try ensure(c.virtualSize == UInt64(12 * mib), "child size \(c.virtualSize)")
            if let m = Content.mismatch(try c.read(count: 12 * mib, at: 0), parentContent) { throw TestFailure("child content: \(m)") }
        }
    }

    // MARK: - (c) coalesce

    /// The parent a coalesce merges into.
    enum CoalesceParent: String, CaseIterable, Sendable {
        case dynamicWithRoom, dynamicWithoutRoom, differencingWithRoom, differencingWithoutRoom
    }

    /// Coalesce.run of a larger child (the parent is grown first) with every kind of block: runs
    /// into a full parent block, a full child block, a new parent block with many runs, an
    /// existing one with more than 32 runs, blocks past the parent's end. After a crash the child
    /// is untouched and still reads its full content through the parent; the parent alone reads,
    /// per sector, its old content or the merged one; repair makes it check clean, and running
    /// coalesce again completes it.
    @Test(arguments: modes, CoalesceParent.allCases)
    func coalesce(mode: CrashBudget.Mode, parentKind: CoalesceParent) throws {
        let setup = MemoryStoreProvider()
        var rng = SplitMix64(seed: 1234)
        let parent = "/sr/parent.vhd", child = "/sr/child.vhd"
        var untouched = [child]
        // With room, the parent's BAT covers 16 MiB (grown by a footer rewrite); without, it
        // covers 8 MiB and coalesce grows it by a journaled resize.
        let room = parentKind == .dynamicWithRoom || parentKind == .differencingWithRoom ? UInt64(16 * mib) : 0
        if parentKind == .dynamicWithRoom || parentKind == .dynamicWithoutRoom {
            try Create.dynamic(at: parent, size: UInt64(8 * mib), fastResizeLimit: room, provider: setup)
        } else {
            try Create.dynamic(at: "/sr/grand.vhd", size: UInt64(8 * mib), provider: setup)
            try VHDChain(path: "/sr/grand.vhd", provider: setup, writable: true).write(rng.bytes(7 * mib), at: 333)
            var o = Snapshot.Options()
            o.fastResizeLimit = room
            try Snapshot.create(child: parent, parent: "/sr/grand.vhd", provider: setup, options: o)
            untouched.append("/sr/grand.vhd")
        }
        let pc = try VHDChain(path: parent, provider: setup, writable: true)
        try pc.write(rng.bytes(2 * mib), at: 0)                        // block 0 full
        try pc.write(rng.bytes(1000 * 512), at: UInt64(2 * mib))       // block 1 partly
        for i in 0..<20 { try pc.write(rng.bytes(512 * (i % 3 + 1)), at: UInt64(6 * mib + i * 50_000)) } // block 3 scattered
        var o = Snapshot.Options()
        o.size = UInt64(12 * mib)
        try Snapshot.create(child: child, parent: parent, provider: setup, options: o)
        let cc = try VHDChain(path: child, provider: setup, writable: true)
        for i in 0..<3 { try cc.write(rng.bytes(700), at: UInt64(i * 300_000 + 5)) }           // into full parent block 0
        try cc.write(rng.bytes(2 * mib), at: UInt64(2 * mib))                                  // full child block 1
        for i in 0..<40 { try cc.write(rng.bytes(512), at: UInt64(4 * mib + i * 40_960)) }     // new block 2, 40 runs
        for i in 0..<40 { try cc.write(rng.bytes(1024), at: UInt64(6 * mib + 1024 + i * 49_152)) } // block 3, 40 runs
        try cc.write(rng.bytes(2000), at: UInt64(10 * mib - 1000))                             // blocks 4-5, past the parent
        let initial = setup.contents
        let childContent = try VHDChain(path: child, provider: setup).read(count: 12 * mib, at: 0)
        let parentOld = Content.resized(try VHDChain(path: parent, provider: setup).read(count: 8 * mib, at: 0), to: 12 * mib)
        runAtEveryCrashPoint(mode, initial: initial, "coalesce into \(parentKind) parent") { p in
            let r = try Coalesce.run(child: child, provider: p)
            try ensure(r.parentPath == parent, "merged into \(r.parentPath)")
        } verify: { crash in
            let s = crash.survivors
            for u in untouched { try ensure(sameBytes(s.bytes(u), initial[u]), "\(u) was modified") }
            let rec = try recover(parent, in: s)
            if crash.complete { try ensure(!rec.repaired, "needed repair without a crash: \(rec.before)") }
            try ensure(!s.exists(parent + ".resize-journal"), "journal of the parent left")
            try checkChain(child, s)
            let through = try VHDChain(path: child, provider: s).read(count: 12 * mib, at: 0)
            if let m = Content.mismatch(through, childContent) { throw TestFailure("content through the child: \(m)") }
            let pchain = try VHDChain(path: parent, provider: s)
            let psize = Int(pchain.virtualSize)
            try ensure(psize == 8 * mib || psize == 12 * mib, "parent size \(psize)")
            let got = try pchain.read(count: psize, at: 0)
            if crash.complete {
                try ensure(psize == 12 * mib, "parent not grown")
                if let m = Content.mismatch(got, childContent) { throw TestFailure("parent after a complete coalesce: \(m)") }
            } else if let bad = Content.firstSectorMatchingNeither(got, parentOld, childContent) {
                throw TestFailure("parent sector \(bad) (block \(bad / 4096)) is neither old nor merged content")
            }
            // Coalescing again finishes the job.
            try Coalesce.run(child: child, provider: s)
            let redone = try VHDChain(path: parent, provider: s)
            try ensure(redone.virtualSize == UInt64(12 * mib), "parent size \(redone.virtualSize) after a second coalesce")
            if let m = Content.mismatch(try redone.read(count: 12 * mib, at: 0), childContent) {
                throw TestFailure("parent after coalescing again: \(m)")
            }
            try checkChain(child, s)
        }
    }

    // MARK: - (d) journaled resize

    /// Resize.run beyond the fast limit, far enough that the BAT needs more sectors and the first
    /// block must move (journal in the same provider). After a crash and recovery (repair replays
    /// the journal) the content is unchanged, the size old or new, no journal is left, and the
    /// resize can be run again.
    @Test(arguments: modes, [DiskType.dynamic, DiskType.differencing])
    func journaledResize(mode: CrashBudget.Mode, kind: DiskType) throws {
        let setup = MemoryStoreProvider()
        var rng = SplitMix64(seed: 9)
        let path: String
        var untouched: [String] = []
        if kind == .dynamic {
            path = "/sr/d.vhd"
            try Create.dynamic(at: path, size: UInt64(4 * mib), provider: setup)
        } else {
            try Create.dynamic(at: "/sr/base.vhd", size: UInt64(4 * mib), provider: setup)
            try VHDChain(path: "/sr/base.vhd", provider: setup, writable: true).write(rng.bytes(4 * mib), at: 0)
            path = "/sr/child.vhd"
            try Snapshot.create(child: path, parent: "/sr/base.vhd", provider: setup)
            untouched = ["/sr/base.vhd"]
        }
        let c = try VHDChain(path: path, provider: setup, writable: true)
        try c.write(rng.bytes(2 * mib), at: 0)
        try c.write(rng.bytes(5000), at: UInt64(2 * mib + 1000))
        let initial = setup.contents
        let oldSize = 4 * mib
        let newSize = kind == .dynamic ? 520 * mib : 1800 * mib
        let model = try VHDChain(path: path, provider: setup).read(count: oldSize, at: 0)
        let firstEntry = try VHDImage(store: try setup.open(path, writable: false), path: path, writable: false).entry(0)

        func verifyContent(_ s: MemoryStoreProvider, sizes: Set<Int>) throws {
            let chain = try VHDChain(path: path, provider: s)
            let size = Int(chain.virtualSize)
            try ensure(sizes.contains(size), "size \(size >> 20) MiB")
            if let m = Content.mismatch(try chain.read(count: oldSize, at: 0), model) { throw TestFailure("content: \(m)") }
            for b in 2..<chain.leaf.maxTableEntries {
                try ensure(chain.leaf.entry(b) == VHDImage.unused, "block \(b) allocated")
            }
            if size > oldSize {
                try ensure(Content.isZero(try chain.read(count: 2 * mib, at: UInt64(size - 2 * mib))), "last block not zero")
            }
            try checkChain(path, s)
        }

        runAtEveryCrashPoint(mode, initial: initial, "journaled resize of \(kind)") { p in
            try Resize.run(path: path, size: UInt64(newSize), provider: p)
        } verify: { crash in
            let s = crash.survivors
            for u in untouched { try ensure(sameBytes(s.bytes(u), initial[u]), "\(u) was modified") }
            let rec = try recover(path, in: s)
            if crash.complete {
                try ensure(!rec.repaired, "needed repair without a crash: \(rec.before)")
                let img = try VHDImage(store: try s.open(path, writable: false), path: path, writable: false)
                try ensure(img.entry(0) != firstEntry, "the first block did not move")
            }
            try ensure(!s.exists(path + ".resize-journal"), "journal left")
            try verifyContent(s, sizes: crash.complete ? [newSize] : [oldSize, newSize])
            // Resizing again completes it.
            try Resize.run(path: path, size: UInt64(newSize), provider: s)
            try verifyContent(s, sizes: [newSize])
        }
    }

    // MARK: - (e) raw to VHD

    /// Convert.rawToVHD into a new dynamic VHD: after a crash the destination does not exist,
    /// could not get its first write (and is discarded), or checks clean after repair and reads,
    /// per sector, zeros or the source.
    @Test(arguments: modes)
    func convertRawToVHD(mode: CrashBudget.Mode) throws {
        var rng = SplitMix64(seed: 2024)
        var raw = [UInt8](repeating: 0, count: 10 * mib + 1000)
        raw.replaceSubrange(0..<2 * mib, with: rng.bytes(2 * mib))                // block 0
        raw.replaceSubrange(4 * mib..<5 * mib, with: rng.bytes(mib))              // half of block 2
        raw.replaceSubrange(8 * mib + 5..<8 * mib + 6, with: [7])                 // one byte in block 4
        raw.replaceSubrange(10 * mib..<10 * mib + 1000, with: rng.bytes(1000))    // partial last block 5
        let initial = ["/sr/src.raw": raw]
        let dst = "/sr/dst.vhd"
        let expected = Content.resized(raw, to: 12 * mib)
        runAtEveryCrashPoint(mode, initial: initial, "rawToVHD") { p in
            let r = try Convert.rawToVHD(source: "/sr/src.raw", destination: dst, provider: p)
            try ensure(r.blocksWritten == 4 && r.virtualSize == UInt64(12 * mib), "result \(r)")
        } verify: { crash in
            let s = crash.survivors
            try ensure(sameBytes(s.bytes("/sr/src.raw"), raw), "source modified")
            guard s.exists(dst) else {
                try ensure(!crash.complete, "no destination after a complete conversion")
                return
            }
            // Calls 1 and 2 create the file and write its empty layout; from then on it must survive.
            if crash.point < 2 && (try? VHDChain(path: dst, provider: s)) == nil {
                try s.remove(dst)
                return
            }
            let rec = try recover(dst, in: s)
            if crash.complete { try ensure(!rec.repaired, "needed repair without a crash: \(rec.before)") }
            let c = try VHDChain(path: dst, provider: s)
            try ensure(c.virtualSize == UInt64(12 * mib), "size \(c.virtualSize)")
            let got = try c.read(count: 12 * mib, at: 0)
            if crash.complete {
                if let m = Content.mismatch(got, expected) { throw TestFailure("content: \(m)") }
            } else if let bad = Content.firstSectorMatchingNeither(got, [UInt8](repeating: 0, count: 12 * mib), expected) {
                throw TestFailure("sector \(bad) is neither zero nor the source")
            }
        }
    }
}
