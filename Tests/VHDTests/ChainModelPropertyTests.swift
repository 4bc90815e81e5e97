import Testing
@testable import VHD

/// Bytes per VHD block (the only block size the engine creates).
private let blockSize = 2 << 20
/// Sectors per block.
private let sectorsPerBlock = 4096
/// The random chains never grow past this virtual size (keeps every full read cheap).
private let maxDiskSize = 16 << 20
/// Snapshots stop (and coalesces take over) at this many VHDs.
private let maxDepth = 8

/// A chain of VHDs in a `MemoryStoreProvider` driven by random operations, next to the model of
/// what it must hold: the chain's paths, the bytes of the virtual disk, the sectors each image
/// holds (its sector bitmaps) and each image's hidden flag. After every operation the chain is
/// reopened from the leaf's path and compared with the model, and every image is checked.
final class ChainModel {
    let seed: UInt64
    var rng: SplitMix64
    let provider = MemoryStoreProvider()
    /// The VHDs of the chain, leaf first.
    var chain: [String] = []
    /// A raw file below the last VHD, if the chain has one.
    var rawBase: String?
    /// The virtual disk as read from the leaf.
    var content: [UInt8] = []
    /// Sectors present in each image (the model of its sector bitmaps; count = its virtual size).
    var held: [String: [Bool]] = [:]
    /// Each image's hidden flag.
    var hidden: [String: UInt8] = [:]
    /// What was done, for failure messages.
    var log: [String] = []
    /// The kind of operation under way (named in failures that happen inside it).
    var current = ""
    private var names = 0
    /// Where verify reads the whole disk (reused: a fresh array per step costs more than the read).
    private let readBuffer = UnsafeMutableRawBufferPointer.allocate(byteCount: maxDiskSize, alignment: 4096)

    init(seed: UInt64) {
        self.seed = seed
        rng = SplitMix64(seed: seed)
    }

    deinit { readBuffer.deallocate() }

    var leaf: String { chain[0] }
    var size: Int { content.count }

    func newPath() -> String {
        names += 1
        return "/sr/vdi-\(names).vhd"
    }

    func bytes(of path: String) -> [UInt8] { (provider.stores[StorePath.normalize(path)] as! MemoryStore).bytes }

    func allBytes() -> [String: [UInt8]] { provider.stores.mapValues { ($0 as! MemoryStore).bytes } }

    func markHeld(_ path: String, offset: Int, length: Int) {
        guard length > 0 else { return }
        for s in offset / 512...(offset + length - 1) / 512 { held[path]![s] = true }
    }

    // MARK: - Starting points

    /// A dynamic VHD of 4-12 MiB, sometimes with BAT room for fast resizes.
    func startDynamic() throws {
        let size = rng.int(2...6) * blockSize
        let limit = rng.chance(0.5) ? UInt64(size + rng.int(1...6) * blockSize) : 0
        let path = newPath()
        try Create.dynamic(at: path, size: UInt64(size), fastResizeLimit: limit, provider: provider)
        chain = [path]
        content = [UInt8](repeating: 0, count: size)
        held[path] = [Bool](repeating: false, count: size / 512)
        hidden[path] = 0
        log.append("create dynamic \(path) of \(size >> 20) MiB, fast limit \(limit >> 20) MiB")
    }

    /// A raw file (4-10 MiB, whole blocks or any byte count, with a zero hole) under a differencing VHD.
    func startRaw() throws {
        // Half the seeds: a whole number of blocks; the others: any byte count.
        let rawSize = rng.chance(0.5) ? rng.int(2...5) * blockSize : rng.int((3 << 20)...(10 << 20))
        var bytes = rng.bytes(rawSize)
        let hole = rng.int(0..<rawSize / 2)
        for i in hole..<min(rawSize, hole + rng.int(1...(3 << 20))) { bytes[i] = 0 }
        rawBase = "/sr/base.raw"
        provider.add(MemoryStore(bytes: bytes), at: rawBase!)
        log.append("raw base of \(rawSize) bytes")
        try snapshotOverRaw()
    }

    /// A new differencing VHD over the raw base; the model is the raw file, zero-extended.
    func snapshotOverRaw() throws {
        let child = newPath()
        var o = Snapshot.Options()
        o.rawParent = true
        if rng.chance(0.3) { o.fastResizeLimit = UInt64(maxDiskSize) }
        let r = try Snapshot.create(child: child, parent: rawBase!, provider: provider, options: o)
        try ensure(r.parentPath == rawBase!, "snapshot over raw linked to \(r.parentPath)")
        let raw = bytes(of: rawBase!)
        // A raw parent's size is kept when it is whole sectors, else rounded up to 2 MiB.
        let size = raw.count % 512 == 0 ? raw.count : (raw.count + blockSize - 1) / blockSize * blockSize
        content = Content.resized(raw, to: size)
        chain = [child]
        held[child] = [Bool](repeating: false, count: size / 512)
        hidden[child] = 0
        log.append("snapshot \(child) over raw (\(size >> 20) MiB)")
    }

    // MARK: - Operations

    /// One random operation; returns its description.
    func step() throws -> String {
        let r = rng.int(0..<100)
        current = ["write", "snapshot", "coalesce", "resize", "set hidden", "rejected request"][[40, 56, 70, 82, 90, 100].firstIndex { r < $0 }!]
        switch r {
        case 0..<40: return try opWrite()
        case 40..<56: return try opSnapshot()
        case 56..<70: return try opCoalesce()
        case 70..<82: return try opResize()
        case 82..<90: return try opSetHidden()
        default: return try opRejected()
        }
    }

    /// An extent of the disk: aligned or not, small or several blocks, across block ends, whole blocks.
    func randomExtent() -> (offset: Int, length: Int) {
        let blocks = size / blockSize
        switch rng.int(0..<6) {
        case 0: // a few whole sectors
            let n = rng.int(1...16)
            return (rng.int(0...(size / 512 - n)) * 512, n * 512)
        case 1: // a small unaligned piece
            let len = rng.int(1...3000)
            return (rng.int(0...(size - len)), len)
        case 2: // across a block boundary, unaligned
            let b = rng.int(1..<blocks)
            let before = rng.int(1...9000), after = rng.int(1...9000)
            return (b * blockSize - before, before + after)
        case 3: // a whole block
            return (rng.int(0..<blocks) * blockSize, blockSize)
        case 4: // large, over several blocks, any alignment
            let len = rng.int((blockSize / 2)...min(size, 5 << 20))
            return (rng.int(0...(size - len)), len)
        default: // whole sectors up to the end of a block
            let b = rng.int(0..<blocks), n = rng.int(1...sectorsPerBlock)
            return ((b + 1) * blockSize - n * 512, n * 512)
        }
    }

    /// 1-3 writes through one open chain.
    func opWrite() throws -> String {
        let c = try VHDChain(path: leaf, provider: provider, writable: true)
        var parts: [String] = []
        for _ in 0..<rng.int(1...3) {
            let (offset, length) = randomExtent()
            let data = rng.chance(0.1) ? [UInt8](repeating: 0, count: length) : rng.bytes(length)
            try c.write(data, at: UInt64(offset))
            content.replaceSubrange(offset..<offset + length, with: data)
            markHeld(leaf, offset: offset, length: length)
            parts.append("\(offset)+\(length)")
        }
        return "write \(leaf) " + parts.joined(separator: ", ")
    }

    /// Where a snapshot of the leaf must link: the first image up from the leaf that holds data,
    /// a dynamic disk, or one over a raw file (unless empty parents are linked anyway).
    func expectedSnapshotTarget(linkEmpty: Bool) -> Int {
        var t = 0
        if !linkEmpty {
            while t < chain.count - 1 && !held[chain[t]]!.contains(true) { t += 1 }
        }
        return t
    }

    func opSnapshot() throws -> String {
        guard chain.count < maxDepth else { return try opCoalesce() }
        var o = Snapshot.Options()
        o.linkEmptyParent = rng.chance(0.3)
        if rng.chance(0.3) { o.size = UInt64(rng.int(1...(maxDiskSize / blockSize)) * blockSize - rng.int(0..<blockSize)) }
        if rng.chance(0.4) { o.fastResizeLimit = UInt64(rng.int(1...(maxDiskSize / blockSize)) * blockSize) }
        let t = expectedSnapshotTarget(linkEmpty: o.linkEmptyParent)
        let child = newPath(), oldLeaf = leaf
        let r = try Snapshot.create(child: child, parent: leaf, provider: provider, options: o)
        try ensure(r.parentPath == chain[t], "snapshot \(child) of \(leaf) linked to \(r.parentPath), expected \(chain[t])")
        let requested = o.size > 0 ? (Int(o.size) + blockSize - 1) / blockSize * blockSize : 0
        let newSize = max(size, requested)
        // Skipped empty images leave the chain; they must still be valid and read as the disk did.
        for s in chain[0..<t] {
            let reports = Check.run(path: s, provider: provider)
            try ensure(reports.allSatisfy(\.valid), "skipped image \(s): \(reports)")
            let own = held[s]!.count * 512
            try ensure(Content.equal(try VHDChain(path: s, provider: provider).read(count: own, at: 0), Array(content[0..<own])),
                       "skipped image \(s) content")
            try provider.remove(s)
            held[s] = nil
            hidden[s] = nil
        }
        chain = [child] + chain[t...]
        content = Content.resized(content, to: newSize)
        held[child] = [Bool](repeating: false, count: newSize / 512)
        hidden[child] = 0
        return "snapshot \(child) of \(oldLeaf) (linked to \(r.parentPath); size \(o.size), fast \(o.fastResizeLimit >> 20) MiB, "
            + "linkEmpty \(o.linkEmptyParent), skipped \(t))"
    }

    func opCoalesce() throws -> String {
        var choices = Array(0..<chain.count - 1)
        if rawBase != nil && chain.count == 1 { choices.append(0) }
        guard !choices.isEmpty else { return try opWrite() }
        let i = rng.pick(choices)
        if i == chain.count - 1 { return try coalesceIntoRaw() }
        let child = chain[i], parent = chain[i + 1]
        let childSize = held[child]!.count * 512
        let parentSize = held[parent]!.count * 512
        var note = ""
        if parentSize < childSize {
            // Either SM-style (resize the parent first) or left to coalesce, which grows the
            // parent itself (a footer rewrite within its BAT, a journaled resize beyond).
            let p = try VHDImage(store: try provider.open(parent, writable: false), path: parent, writable: false)
            let how = UInt64(childSize) <= Resize.fastLimit(p) ? "fast" : "journaled"
            if rng.chance(0.5) {
                try Resize.run(path: parent, size: UInt64(childSize), provider: provider)
                note = ", parent resized first (\(how))"
            } else {
                note = ", parent grown by coalesce (\(how))"
            }
            held[parent]! += [Bool](repeating: false, count: (childSize - parentSize) / 512)
        }
        let expectedSectors = held[child]!.reduce(0) { $0 + ($1 ? 1 : 0) }
        let r = try Coalesce.run(child: child, provider: provider)
        try ensure(r.parentPath == parent, "coalesce merged into \(r.parentPath), expected \(parent)")
        try ensure(r.sectors == UInt64(expectedSectors), "coalesce reports \(r.sectors) sectors, child holds \(expectedSectors)")
        try ensure(!provider.exists(parent + ".resize-journal"), "resize journal of the parent left behind")
        for (s, h) in held[child]!.enumerated() where h { held[parent]![s] = true }
        if i == 0 {
            try provider.remove(child)
            chain.removeFirst()
        } else {
            try Relink.run(child: chain[i - 1], newParent: parent, provider: provider)
            try provider.remove(child)
            chain.remove(at: i)
        }
        held[child] = nil
        hidden[child] = nil
        return "coalesce \(child) into \(parent) (\(expectedSectors) sectors\(note))" + (i > 0 ? ", relinked \(chain[i - 1])" : "")
    }

    /// Merges the only VHD into the raw base, then starts a new VHD over it.
    func coalesceIntoRaw() throws -> String {
        let child = chain[0]
        let oldRaw = bytes(of: rawBase!)
        // The raw parent takes the child's virtual size, as a VHD parent would.
        let newRawSize = max(oldRaw.count, content.count)
        let r = try Coalesce.run(child: child, provider: provider)
        try ensure(r.parentPath == rawBase!, "coalesce into raw merged into \(r.parentPath)")
        let raw = bytes(of: rawBase!)
        try ensure(raw.count == newRawSize, "raw base is \(raw.count) bytes after coalesce, expected \(newRawSize)")
        if let m = Content.mismatch(raw, Array(content[0..<newRawSize])) { throw TestFailure("raw base after coalesce: \(m)") }
        try ensure(content[newRawSize...].allSatisfy { $0 == 0 }, "model holds data past the raw file")
        try provider.remove(child)
        held[child] = nil
        hidden[child] = nil
        try snapshotOverRaw()
        return "coalesce \(child) into raw (\(r.sectors) sectors), new leaf \(leaf)"
    }

    func opResize() throws -> String {
        guard size < maxDiskSize else { return try opWrite() }
        let img = try VHDImage(store: try provider.open(leaf, writable: false), path: leaf, writable: false)
        let fast = Int(Resize.fastLimit(img))
        let entriesBefore = img.maxTableEntries
        let target: Int
        if fast > size && rng.chance(0.6) {
            target = rng.int((size / blockSize + 1)...(min(fast, maxDiskSize) / blockSize)) * blockSize
        } else {
            target = rng.int((size / blockSize + 1)...(maxDiskSize / blockSize)) * blockSize
        }
        let request = target - rng.int(0..<blockSize) // rounds up to `target`
        try Resize.run(path: leaf, size: UInt64(request), provider: provider)
        let after = try VHDImage(store: try provider.open(leaf, writable: false), path: leaf, writable: false)
        try ensure(after.virtualSize == UInt64(target), "resize to \(request) gave \(after.virtualSize), expected \(target)")
        if target <= fast {
            try ensure(after.maxTableEntries == entriesBefore, "fast resize changed the BAT: \(entriesBefore) -> \(after.maxTableEntries)")
        } else {
            try ensure(after.maxTableEntries == target / blockSize, "journaled resize left \(after.maxTableEntries) BAT entries")
        }
        try ensure(!provider.exists(leaf + ".resize-journal"), "resize journal left behind")
        let description = "resize \(leaf) \(size >> 20) -> \(target >> 20) MiB (\(target <= fast ? "fast" : "journaled"), fast limit \(fast >> 20) MiB)"
        held[leaf]! += [Bool](repeating: false, count: (target - size) / 512)
        content = Content.resized(content, to: target)
        return description
    }

    func opSetHidden() throws -> String {
        let p = rng.pick(chain)
        let v: UInt8 = rng.chance(0.5) ? 1 : 0
        let img = try VHDImage(store: try provider.open(p, writable: true), path: p, writable: true)
        try img.updateFooter { $0.hidden = v }
        hidden[p] = v
        return "set hidden=\(v) on \(p)"
    }

    /// A request the engine must refuse with a precise error, changing nothing.
    func opRejected() throws -> String {
        let before = allBytes()
        let what: String
        func expectError(_ body: () throws -> Void, _ matches: (VHDError) -> Bool) throws {
            do {
                try body()
                throw TestFailure("\(what) succeeded")
            } catch let e as VHDError {
                try ensure(matches(e), "\(what) failed with \(e)")
            }
        }
        switch rng.int(0..<5) {
        case 0:
            let over = rng.int(1...5000)
            what = "write of \(over + 100) bytes at \(size - 100)"
            let c = try VHDChain(path: leaf, provider: provider, writable: true)
            try expectError({ try c.write(rng.bytes(over + 100), at: UInt64(size - 100)) }) {
                if case .outOfRange = $0 { return true } else { return false }
            }
        case 1:
            what = "shrink of \(leaf) to \(size - blockSize)"
            try expectError({ try Resize.run(path: leaf, size: UInt64(size - blockSize), provider: provider) }) {
                if case .unsupported = $0 { return true } else { return false }
            }
        case 2:
            let img = try VHDImage(store: try provider.open(leaf, writable: false), path: leaf, writable: false)
            let beyond = Resize.fastLimit(img) + UInt64(blockSize)
            what = "fast-only resize of \(leaf) to \(beyond >> 20) MiB"
            try expectError({ try Resize.run(path: leaf, size: beyond, provider: provider, fastOnly: true) }) {
                if case .unsupported = $0 { return true } else { return false }
            }
        case 3:
            let t = expectedSnapshotTarget(linkEmpty: false)
            let depth = chain.count - t + 1
            var o = Snapshot.Options()
            o.depthLimit = depth - 1 // (depth counts VHDs, not a raw base)
            what = "snapshot with depth limit \(o.depthLimit) (new depth \(depth))"
            let child = newPath()
            try expectError({ try Snapshot.create(child: child, parent: leaf, provider: provider, options: o) }) {
                if case .chainTooDeep = $0 { return true } else { return false }
            }
        default:
            guard rawBase == nil else { return "skipped coalesce of the base" }
            let base = chain[chain.count - 1]
            what = "coalesce of the dynamic base \(base)"
            try expectError({ try Coalesce.run(child: base, provider: provider) }) {
                if case .unsupported = $0 { return true } else { return false }
            }
        }
        try ensure(sameStores(allBytes(), before), "\(what) was refused but changed some store")
        return "rejected: " + what
    }

    // MARK: - Verification

    /// Reopens the chain from the leaf and compares everything with the model.
    func verify() throws {
        let c = try VHDChain(path: leaf, provider: provider)
        let expectedPaths = chain + (rawBase.map { [$0] } ?? [])
        try ensure(c.paths == expectedPaths, "chain is \(c.paths), expected \(expectedPaths)")
        try ensure(c.virtualSize == UInt64(size), "virtual size \(c.virtualSize), expected \(size)")
        try ensure(size <= maxDiskSize, "the model outgrew its cap")
        let got = UnsafeMutableRawBufferPointer(rebasing: readBuffer[0..<size])
        try c.read(into: got, at: 0)
        if !Content.equal(UnsafeRawBufferPointer(got), content[...]), let m = Content.mismatch(Array(got), content) {
            throw TestFailure("content of \(leaf): \(m)")
        }
        // An unaligned read across a random point agrees too.
        let off = rng.int(0..<size - 1), len = rng.int(1...min(size - off, blockSize + 1000))
        let piece = UnsafeMutableRawBufferPointer(rebasing: readBuffer[0..<len])
        try c.read(into: piece, at: UInt64(off))
        try ensure(Content.equal(UnsafeRawBufferPointer(piece), content[off..<off + len]), "read of \(len) at \(off)")

        var options = Check.Options()
        options.parents = true
        let reports = Check.run(path: leaf, provider: provider, options: options)
        try ensure(reports.count == chain.count && reports.allSatisfy(\.valid), "check: \(reports.filter { !$0.valid })")

        for (i, p) in chain.enumerated() {
            let img = c.images[i]
            let h = held[p]!
            try ensure(img.virtualSize == UInt64(h.count * 512), "\(p): size \(img.virtualSize), expected \(h.count * 512)")
            try ensure(img.footer.hidden == hidden[p]!, "\(p): hidden \(img.footer.hidden), expected \(hidden[p]!)")
            let base = i == chain.count - 1 && rawBase == nil
            try ensure(img.diskType == (base ? .dynamic : .differencing), "\(p): type \(img.diskType)")
            try ensure(img.batmapHeader != nil && img.batmapValid, "\(p): batmap missing or invalid")
            for b in 0..<img.blockCount {
                let blockHeld = h[b * sectorsPerBlock..<(b + 1) * sectorsPerBlock]
                let any = blockHeld.contains(true)
                try ensure(img.isAllocated(b) == any, "\(p): block \(b) allocated \(img.isAllocated(b)), holds data \(any)")
                guard any else { continue }
                let map = try img.bitmap(b)
                for s in 0..<sectorsPerBlock where SectorBitmap.test(map, s) != blockHeld[b * sectorsPerBlock + s] {
                    throw TestFailure("\(p): block \(b) sector \(s) bitmap bit \(SectorBitmap.test(map, s)), expected \(!SectorBitmap.test(map, s))")
                }
                let full = !blockHeld.contains(false)
                try ensure(img.batmapSaysFull(b) == full, "\(p): batmap bit of block \(b) is \(img.batmapSaysFull(b)), block full \(full)")
            }
            for b in img.blockCount..<img.maxTableEntries {
                try ensure(img.entry(b) == VHDImage.unused, "\(p): BAT entry \(b) past the disk is allocated")
            }
        }
        // Nothing else in the namespace: no journal, no leaked image.
        let stores = Set(provider.stores.keys)
        try ensure(stores == Set(expectedPaths), "stores \(stores.sorted()), expected \(expectedPaths.sorted())")
    }

    /// Starts, then runs `steps` random operations, verifying after each.
    func run(steps: Int, rawBase raw: Bool) throws {
        do {
            if raw { try startRaw() } else { try startDynamic() }
            try verify()
        } catch {
            throw TestFailure("seed \(seed), start [\(log.joined(separator: "; "))]: \(error)")
        }
        for i in 0..<steps {
            var op = ""
            do {
                op = try step()
                log.append(op)
                try verify()
            } catch {
                let recent = log.suffix(6).joined(separator: "\n    ")
                throw TestFailure("seed \(seed), step \(i), operation \"\(op.isEmpty ? current + " (failed inside)" : op)\": \(error)\n  recent operations:\n    \(recent)")
            }
        }
    }
}

@Suite struct ChainModelPropertyTests {
    static let dynamicSeeds = Array(UInt64(1)...40)
    static let rawSeeds = Array(UInt64(1001)...1012)

    /// 40 seeds x 60 random writes, snapshots, coalesces, resizes and flag changes over a
    /// dynamic base, each followed by a full comparison with the model and a check of every image.
    @Test(arguments: dynamicSeeds)
    func randomOperationsOnDynamicBase(seed: UInt64) throws {
        try ChainModel(seed: seed).run(steps: 60, rawBase: false)
    }

    /// The same over a raw (non-VHD) base, of whole blocks or of any byte count, including
    /// coalesces into the raw file.
    @Test(arguments: rawSeeds)
    func randomOperationsOnRawBase(seed: UInt64) throws {
        try ChainModel(seed: seed).run(steps: 60, rawBase: true)
    }

    /// The model itself: a deterministic sequence replays identically (same seed, same bytes).
    @Test func sameSeedSameImages() throws {
        let a = ChainModel(seed: 7), b = ChainModel(seed: 7)
        try a.run(steps: 12, rawBase: false)
        try b.run(steps: 12, rawBase: false)
        #expect(a.log == b.log)
        #expect(a.content == b.content)
        #expect(a.chain == b.chain)
        var g = SplitMix64(seed: 0)
        // Reference values of SplitMix64 for seed 0 (from the published algorithm).
        #expect(g.next() == 0xE220_A839_7B1D_CDAF)
        #expect(g.next() == 0x6E78_9E6A_A1B9_65F4)
    }

    /// A child larger than its parent reads zeros beyond the parent's size, at every level of a
    /// three-image chain, including unaligned writes straddling the parent's end; coalescing the
    /// larger child grows the parent (journaled when its BAT is too small, in place when not).
    @Test func childLargerThanParentReadsZerosBeyondParent() throws {
        let p = MemoryStoreProvider()
        var rng = SplitMix64(seed: 99)
        let mib = 1 << 20
        try Create.dynamic(at: "/sr/base.vhd", size: UInt64(4 * mib), fastResizeLimit: UInt64(16 * mib), provider: p)
        let baseData = rng.bytes(4 * mib).map { $0 | 1 } // no zero byte anywhere
        try VHDChain(path: "/sr/base.vhd", provider: p, writable: true).write(baseData, at: 0)

        var o = Snapshot.Options()
        o.size = UInt64(8 * mib)
        #expect(try Snapshot.create(child: "/sr/mid.vhd", parent: "/sr/base.vhd", provider: p, options: o).parentPath == "/sr/base.vhd")
        var mid = Content.resized(baseData, to: 8 * mib)
        #expect(try VHDChain(path: "/sr/mid.vhd", provider: p).read(count: 8 * mib, at: 0) == mid)
        let midWrites: [(Int, [UInt8])] = [(4 * mib - 100, rng.bytes(200)), (4 * mib + 5 * 512, rng.bytes(11 * 512)),
                                           (6 * mib + 3, rng.bytes(1))]
        let midChain = try VHDChain(path: "/sr/mid.vhd", provider: p, writable: true)
        for (off, d) in midWrites { try midChain.write(d, at: UInt64(off)); mid.replaceSubrange(off..<off + d.count, with: d) }

        o.size = UInt64(12 * mib)
        #expect(try Snapshot.create(child: "/sr/leaf.vhd", parent: "/sr/mid.vhd", provider: p, options: o).parentPath == "/sr/mid.vhd")
        var leaf = Content.resized(mid, to: 12 * mib)
        let leafWrites: [(Int, [UInt8])] = [(8 * mib - 700, rng.bytes(1400)), (10 * mib + 512, rng.bytes(512)),
                                            (4 * mib - 1, rng.bytes(2))]
        let leafChain = try VHDChain(path: "/sr/leaf.vhd", provider: p, writable: true)
        for (off, d) in leafWrites { try leafChain.write(d, at: UInt64(off)); leaf.replaceSubrange(off..<off + d.count, with: d) }

        // Zeros beyond each parent's end, data below it.
        #expect(mid[(4 * mib + 100)..<(4 * mib + 5 * 512)].allSatisfy { $0 == 0 })
        #expect(leaf[(8 * mib + 700)..<(10 * mib + 512)].allSatisfy { $0 == 0 })
        let base = try VHDChain(path: "/sr/base.vhd", provider: p)
        let midRead = try VHDChain(path: "/sr/mid.vhd", provider: p)
        let leafRead = try VHDChain(path: "/sr/leaf.vhd", provider: p)
        #expect(base.virtualSize == UInt64(4 * mib) && midRead.virtualSize == UInt64(8 * mib) && leafRead.virtualSize == UInt64(12 * mib))
        #expect(Content.mismatch(try base.read(count: 4 * mib, at: 0), baseData) == nil)
        #expect(Content.mismatch(try midRead.read(count: 8 * mib, at: 0), mid) == nil)
        #expect(Content.mismatch(try leafRead.read(count: 12 * mib, at: 0), leaf) == nil)
        for (off, len) in [(4 * mib - 500, 1000), (8 * mib - 1, 2), (8 * mib, 4096), (4 * mib, 4 * mib), (7 * mib + 1, 3 * mib)] {
            #expect(try leafRead.read(count: len, at: UInt64(off)) == Array(leaf[off..<off + len]), "leaf read \(len) at \(off)")
        }
        var options = Check.Options()
        options.parents = true
        #expect(Check.run(path: "/sr/leaf.vhd", provider: p, options: options).map(\.valid) == [true, true, true])

        // mid's BAT holds 8 MiB: coalescing the 12 MiB leaf grows it by a journaled resize first.
        let midEntries = try VHDImage(store: try p.open("/sr/mid.vhd", writable: false), path: "/sr/mid.vhd", writable: false).maxTableEntries
        #expect(midEntries == 4)
        #expect(try Coalesce.run(child: "/sr/leaf.vhd", provider: p).parentPath == "/sr/mid.vhd")
        #expect(!p.exists("/sr/mid.vhd.resize-journal"))
        try p.remove("/sr/leaf.vhd")
        let midGrown = try VHDChain(path: "/sr/mid.vhd", provider: p)
        #expect(midGrown.virtualSize == UInt64(12 * mib))
        #expect(midGrown.leaf.maxTableEntries == 6)
        #expect(Content.mismatch(try midGrown.read(count: 12 * mib, at: 0), leaf) == nil)

        // base's BAT has room for 16 MiB: coalesce grows it to mid's 12 MiB by itself.
        let r = try Coalesce.run(child: "/sr/mid.vhd", provider: p)
        #expect(r.parentPath == "/sr/base.vhd")
        let grown = try VHDChain(path: "/sr/base.vhd", provider: p)
        #expect(grown.virtualSize == UInt64(12 * mib))
        #expect(Content.mismatch(try grown.read(count: 12 * mib, at: 0), leaf) == nil)
        #expect(Check.run(path: "/sr/mid.vhd", provider: p, options: options).map(\.valid) == [true, true])
    }

    /// A chain over a raw parent (`rawParent`): reads come from the raw file (zeros past its odd
    /// end), unaligned writes straddle that end, empty children over raw are not skipped, and a
    /// coalesce writes exactly the child's sectors into the raw file.
    @Test func rawParentChain() throws {
        let p = MemoryStoreProvider()
        var rng = SplitMix64(seed: 4242)
        let rawSize = (5 << 20) + 1234
        let raw = rng.bytes(rawSize)
        p.add(MemoryStore(bytes: raw), at: "/sr/disk.raw")
        var o = Snapshot.Options()
        o.rawParent = true
        let r1 = try Snapshot.create(child: "/sr/c1.vhd", parent: "/sr/disk.raw", provider: p, options: o)
        #expect(r1.parentPath == "/sr/disk.raw")
        let c1 = try VHDChain(path: "/sr/c1.vhd", provider: p, writable: true)
        #expect(c1.rawParentPath == "/sr/disk.raw")
        #expect(c1.leaf.parentUUID.isNull)
        #expect(c1.virtualSize == UInt64(6 << 20))
        var model = Content.resized(raw, to: 6 << 20)
        #expect(Content.mismatch(try c1.read(count: 6 << 20, at: 0), model) == nil)

        let writes: [(Int, [UInt8])] = [(rawSize - 100, rng.bytes(300)), (0, rng.bytes(4096)), ((2 << 20) - 10, rng.bytes(20)),
                                        ((6 << 20) - 512, rng.bytes(512))]
        for (off, d) in writes { try c1.write(d, at: UInt64(off)); model.replaceSubrange(off..<off + d.count, with: d) }
        let reread = try VHDChain(path: "/sr/c1.vhd", provider: p)
        #expect(reread.paths == ["/sr/c1.vhd", "/sr/disk.raw"])
        #expect(Content.mismatch(try reread.read(count: 6 << 20, at: 0), model) == nil)
        var options = Check.Options()
        options.parents = true
        #expect(Check.run(path: "/sr/c1.vhd", provider: p, options: options).map(\.valid) == [true])

        // Snapshots: a child of c1 links to c1; an empty child is skipped down to c1 only.
        #expect(try Snapshot.create(child: "/sr/c2.vhd", parent: "/sr/c1.vhd", provider: p).parentPath == "/sr/c1.vhd")
        #expect(try Snapshot.create(child: "/sr/c3.vhd", parent: "/sr/c2.vhd", provider: p).parentPath == "/sr/c1.vhd")
        #expect(Content.mismatch(try VHDChain(path: "/sr/c3.vhd", provider: p).read(count: 6 << 20, at: 0), model) == nil)
        #expect(Check.run(path: "/sr/c3.vhd", provider: p, options: options).map(\.valid) == [true, true])
        // An empty child directly over raw is not skipped (there is no VHD below to link to).
        _ = try Snapshot.create(child: "/sr/e1.vhd", parent: "/sr/disk.raw", provider: p, options: o)
        #expect(try Snapshot.create(child: "/sr/e2.vhd", parent: "/sr/e1.vhd", provider: p).parentPath == "/sr/e1.vhd")
        for path in ["/sr/c2.vhd", "/sr/c3.vhd", "/sr/e1.vhd", "/sr/e2.vhd"] { try p.remove(path) }

        // Coalesce into the raw file: exactly the written sectors land there, and it grows to
        // cover the sector written past its end.
        let merged = try Coalesce.run(child: "/sr/c1.vhd", provider: p)
        #expect(merged.parentPath == "/sr/disk.raw")
        #expect(merged.sectors == 1 + 8 + 2 + 1) // sectors 10242 | 0-7 | 4095-4096 | 12287
        let after = (p.stores["/sr/disk.raw"] as! MemoryStore).bytes
        #expect(after.count == 6 << 20)
        #expect(Content.mismatch(after, model) == nil)
    }

    /// A journaled resize beyond what the BAT sector(s) can hold moves the first data blocks to
    /// make room for the bigger BAT; the content is unchanged and new blocks can be written.
    @Test(arguments: [DiskType.dynamic, DiskType.differencing])
    func resizeBeyondBATSectorMovesBlocks(kind: DiskType) throws {
        let p = MemoryStoreProvider()
        var rng = SplitMix64(seed: 5150)
        let mib = 1 << 20
        var model: [UInt8]
        let path: String
        if kind == .dynamic {
            path = "/sr/d.vhd"
            try Create.dynamic(at: path, size: UInt64(4 * mib), provider: p)
            model = [UInt8](repeating: 0, count: 4 * mib)
        } else {
            try Create.dynamic(at: "/sr/base.vhd", size: UInt64(4 * mib), provider: p)
            let b = rng.bytes(4 * mib)
            try VHDChain(path: "/sr/base.vhd", provider: p, writable: true).write(b, at: 0)
            path = "/sr/child.vhd"
            try Snapshot.create(child: path, parent: "/sr/base.vhd", provider: p)
            model = b
        }
        let c = try VHDChain(path: path, provider: p, writable: true)
        for (off, len) in [(0, 2 * mib), (2 * mib + 1000, 5000), (3 * mib, 512)] {
            let d = rng.bytes(len)
            try c.write(d, at: UInt64(off))
            model.replaceSubrange(off..<off + len, with: d)
        }
        let before = try VHDImage(store: try p.open(path, writable: false), path: path, writable: false)
        let oldEntries = (0..<2).map { before.entry($0) }
        // dynamic: 260 entries need 3 BAT sectors (metadata to 4096 > first block at 3584);
        // differencing: 900 entries need 8 BAT sectors (metadata with locators to 8192 > 7680).
        let newSize = kind == .dynamic ? 520 * mib : 1800 * mib
        try Resize.run(path: path, size: UInt64(newSize), provider: p)
        let img = try VHDImage(store: try p.open(path, writable: false), path: path, writable: false)
        #expect(img.virtualSize == UInt64(newSize))
        #expect(img.maxTableEntries == newSize / blockSize)
        #expect(img.entry(0) != oldEntries[0], "the first block did not move")
        #expect(UInt64(img.entry(0)) * 512 >= img.endOfMetadata)
        #expect(img.entry(1) == oldEntries[1])
        #expect(!p.exists(path + ".resize-journal"))
        for b in 2..<img.maxTableEntries { #expect(img.entry(b) == VHDImage.unused, "block \(b)") }
        let grown = try VHDChain(path: path, provider: p, writable: true)
        #expect(Content.mismatch(try grown.read(count: 4 * mib, at: 0), model) == nil)
        #expect(Content.isZero(try grown.read(count: 2 * mib, at: UInt64(newSize - 2 * mib))))
        #expect(Content.isZero(try grown.read(count: 2 * mib, at: UInt64(4 * mib))))
        var options = Check.Options()
        options.parents = true
        #expect(Check.run(path: path, provider: p, options: options).filter { !$0.valid } == [])
        // Writing after the move: new blocks far out and in the moved block.
        let far = rng.bytes(3000), near = rng.bytes(700)
        try grown.write(far, at: UInt64(newSize - 2 * mib + 77))
        try grown.write(near, at: 12345)
        model.replaceSubrange(12345..<12345 + 700, with: near)
        let again = try VHDChain(path: path, provider: p)
        #expect(Content.mismatch(try again.read(count: 4 * mib, at: 0), model) == nil)
        #expect(try again.read(count: 3000, at: UInt64(newSize - 2 * mib + 77)) == far)
        #expect(Check.run(path: path, provider: p, options: options).filter { !$0.valid } == [])
    }
}
