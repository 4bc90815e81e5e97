import Foundation
import VHD

/// Where each block of the virtual disk reads from, learnt by the chain thread and consulted by
/// the event loops, so that a READ of blocks already known is planned, and usually read from the
/// page cache, without a hop to the chain thread.
///
/// A block is known when its whole range lies contiguously in one file of the chain, or reads
/// as zeros, or when the leaf holds it in part over something of that kind (a mixed block, the
/// common case just after a snapshot: the leaf's sectors, the rest from one range of the parent
/// or zeros; see below). A block wholly present in the leaf (or in any image of a read-only
/// chain) never moves while the chain is open: writes land in place. Any other entry is brought
/// up to date by the chain thread after every WRITE that touches the block, before that write is
/// answered (and forgotten after any other write, or a WRITE that failed). A READ overlapping a
/// write or WRITE_ZEROES that is queued or running takes the chain thread's queue, as every
/// request did before (a READ sent after a WRITE whose reply it did not wait for still sees it);
/// READs of other bytes go on from the map (a pending write changes no entry but of blocks it
/// touches, and those only for the sectors it writes). The map is closed, and its readers waited
/// for, before the chain is paused, reopened or closed.
///
/// Mixed blocks: when the leaf has allocated a block, holds some of its sectors, and the sectors
/// it does not hold read from one contiguous range of one file of the parents (or all read as
/// zeros), the entry names a slot of `MixedBlocks`: the leaf's data offset, a copy of the leaf's
/// sector bitmap of the block, and what lies under it. A READ is then planned per run of that
/// bitmap: sectors the leaf holds from the leaf file, the others from the parent (or zeros). The
/// copy is exact, neither ahead nor behind the leaf's bitmap as far as any READ planned from it
/// can see:
/// - it is taken on the chain thread from the leaf's bitmap (`VHDImage.bitmap`, which the engine
///   updates only after it has written the bitmap sector to the leaf file, and drops when a
///   write fails: `ChainWorker.submitWrite`), when the block is learnt, and again after every
///   WRITE into the block returned, before its reply and before the write stops being pending;
/// - bits are only ever set while the chain is open (the engine never clears one: WRITE_ZEROES
///   writes zeros in place, TRIM punches holes in data areas and leaves the bitmap), so a copy
///   can only lag behind the leaf by the sectors of writes still pending, and READs of those take
///   the queue behind them;
/// - what lies under the block (the parents) does not change while the chain is open; only
///   sectors the leaf does not hold are read from it, and those were all checked to map there
///   when the block was learnt (bits only get set, so that set only shrinks).
/// A block that fills up becomes a plain leaf entry, stable, and its slot is freed. Slots are
/// bounded (`MixedBlocks.budget`); a block that finds none stays with the chain thread.
///
/// Fast writes: a plain WRITE (no FUA) of whole sectors lying wholly in blocks known as wholly
/// present in the writable leaf, or in sectors that the map knows the leaf holds in a mixed
/// block, is a pure overwrite of allocated, present sectors: the engine would only pwrite the
/// data (`VHDImage.writeInBlock`: the block has a BAT entry, so no allocation; `markPresent`
/// finds every bit set, so no bitmap write; `commit` finds nothing dirty). Such writes are done
/// by the event loop itself with pwrite on the leaf's descriptor (`writeTarget`,
/// `writeFinished`), without the chain thread. Why that is safe:
/// - Their entries cannot go stale: a leaf block's BAT entry and bitmap never change back while
///   the chain is open (blocks are only ever allocated at the end of the file and bits only ever
///   set; WRITE_ZEROES writes zeros in place), which is why `writeDone` keeps stable entries and
///   a mixed block's present sectors stay present.
///   TRIM changes no mapping either: it only punches holes in the data areas of blocks the leaf
///   already has (`VHDImage.discard`; no BAT, bitmap or batmap write), so an entry still names
///   the right file bytes, which now read as zeros by every path (the kernel drops the punched
///   pages from the page cache, so a cached read, sendfile or pread all see zeros), and a fast
///   write into a punched page simply allocates it again. Only a new chain (pause/unpause,
///   refresh) changes them, and that closes the map first and opens a fresh one.
/// - `close` waits for fast writers as for readers, and no fast write starts once the map is
///   closed, so a paused (closed) chain is never written and its descriptors stay open while a
///   pwrite runs; the pause's flush (and unpause's and close's) comes after the wait.
/// - A fast write is answered only after its pwrite returned, and it went through the leaf
///   file's own buffered descriptor (the one `FileStore.sync` fdatasyncs), so a later FLUSH (or a
///   later READ by either path: page cache, or the chain thread's preads) sees it.
/// - Read-only chains (and read-only exports) never take one: `leafWritable` is false.
/// - Sector granularity: the chain thread merges unaligned writes by rewriting whole sectors;
///   a fast write covers whole sectors, so it never races such a merge over bytes it does not
///   itself write (writes in flight together over the same sector overlap, and NBD leaves their
///   order to the server).
///
/// Stores with a kernel descriptor (`DescriptorStore`) and stores that take several callers at
/// once (`ConcurrentReadStore`: an NFS file, an LV on an iSCSI LUN) are mapped; blocks any other
/// store holds stay with the chain thread (the generic path). Pieces of the second kind are read
/// and written on I/O threads, never on an event loop (they may wait on the network), with the
/// store's own calls instead of pread and pwrite; the rules above hold for them unchanged (the
/// leaf's store is the one its FLUSH syncs, and `close` waits for them as for the others).
final class ReadMap: @unchecked Sendable {
    /// Granularity of the map for images without blocks (fixed VHDs).
    static let defaultBlockSize = 2 << 20

    // Entry encoding: kind in bits 0-2, stable in bit 3, store index in bits 4-11, and from bit
    // 12 the file offset in 512-byte sectors (file) or the slot in `MixedBlocks` (split).
    static let kindMask: UInt64 = 7
    static let unknown: UInt64 = 0
    static let mixed: UInt64 = 1
    static let zero: UInt64 = 2
    static let file: UInt64 = 3
    static let split: UInt64 = 4
    static let stableBit: UInt64 = 8

    /// A file entry: `store`'s bytes from sector `sector`.
    static func fileEntry(store: Int, sector: UInt64, stable: Bool) -> UInt64 {
        file | (stable ? stableBit : 0) | UInt64(store) << 4 | sector << 12
    }

    /// Counters of the READs answered from the map (merged into `DatapathStats`).
    struct Counters {
        var reads: UInt64 = 0
        var bytes: UInt64 = 0
        var errors: UInt64 = 0
        var latencyTotal: UInt64 = 0
        var latencyMax: UInt64 = 0
        var writes: UInt64 = 0
        var writeBytes: UInt64 = 0
        /// READs planned from the map that read a mixed block by its sector map.
        var mixedReads: UInt64 = 0
        /// Fast writes into present sectors of a mixed block.
        var mixedWrites: UInt64 = 0
    }

    /// What the chain says about one block, before it is put in the map.
    private enum Resolution {
        case entry(UInt64)
        case split(leafOffset: UInt64, under: UInt64, bitmap: [UInt8])
    }

    private let condition = NSCondition()
    // Guarded by `condition`.
    private var isOpen = false
    private var entries: UnsafeMutablePointer<UInt64>?
    private var blockCount = 0
    private var blockShift: UInt64 = 21
    private var size: UInt64 = 0
    /// Where each store of the chain is read, by index (nil: not mapped).
    private var sources: [ReadPlan.Source?] = []
    private var readers = 0
    private var writers = 0
    private var leafWritable = false
    private var mixedBlocks: MixedBlocks?
    /// Byte ranges of the writes queued for the chain thread, by ticket.
    private var pendingWrites: [(ticket: UInt64, range: Range<UInt64>)] = []
    private var nextTicket: UInt64 = 0
    private var generation: UInt64 = 0
    private var counters = Counters()
    // Chain thread only: the stores of the open chain, by index, and whether each has a descriptor.
    private var stores: [ObjectIdentifier] = []
    private var mapped: [Bool] = []
    private var allStable = false

    deinit { free(entries) }

    // MARK: - Chain thread

    /// Starts mapping `chain` (every entry unknown). Stores with neither a kernel descriptor nor
    /// concurrent reads keep the blocks they hold off the map.
    func open(_ chain: VHDChain) {
        let leaf = chain.leaf
        let block = leaf.diskType == .fixed ? Self.defaultBlockSize : leaf.blockSize
        guard block >= 4096, block.nonzeroBitCount == 1 else { return }
        var ids: [ObjectIdentifier] = []
        var found: [ReadPlan.Source?] = []
        for store in chain.images.map(\.store) + (chain.rawParent.map { [$0] } ?? []) {
            ids.append(ObjectIdentifier(store))
            if let file = store as? any DescriptorStore {
                found.append(.file(file.descriptor.rawValue))
            } else if let concurrent = store as? any ConcurrentReadStore {
                found.append(.store(ReadPlan.PlannedStore(store: concurrent)))
            } else {
                found.append(nil)
            }
        }
        guard ids.count < 256 else { return }
        let size = chain.virtualSize
        let count = Int((size + UInt64(block) - 1) / UInt64(block))
        // calloc: pages of blocks never read stay untouched (no resident memory).
        guard let table = calloc(max(count, 1), MemoryLayout<UInt64>.size)?.assumingMemoryBound(to: UInt64.self) else { return }
        stores = ids
        mapped = found.map { $0 != nil }
        let leafTakesWrites: Bool
        switch found[0] {
        case .file?: leafTakesWrites = true
        case .store?: leafTakesWrites = leaf.store is any ConcurrentWriteStore
        case nil: leafTakesWrites = false
        }
        allStable = !leaf.writable
        let mixed = leaf.diskType == .fixed || !mapped[0] ? nil : MixedBlocks(sectorsPerBlock: block / 512, blocks: count)
        condition.withLock {
            free(entries)
            entries = table
            blockCount = count
            blockShift = UInt64(block.trailingZeroBitCount)
            self.size = size
            sources = found
            leafWritable = leaf.writable && leafTakesWrites
            mixedBlocks = mixed
            generation += 1
            isOpen = true
        }
    }

    /// Stops answering from the map and waits for every READ planned from it, and every fast
    /// write, to finish; the chain's descriptors may be closed (or flushed) afterwards.
    func close() {
        condition.withLock {
            isOpen = false
            leafWritable = false
            while readers > 0 || writers > 0 { condition.wait() }
            free(entries)
            entries = nil
            blockCount = 0
            sources = []
            mixedBlocks = nil
        }
        stores = []
        mapped = []
    }

    /// Learns the blocks of `[offset, offset+length)` that are not known yet.
    func learn(_ chain: VHDChain, offset: UInt64, length: Int) {
        update(chain, offset: offset, length: length, refresh: false)
    }

    /// After a WRITE of `[offset, offset+length)` returned (chain thread, before its reply):
    /// brings every entry of its blocks up to date with the chain (a mixed block's sector map
    /// from the leaf's bitmap, anything else but stable entries resolved again) and learns the
    /// unknown ones.
    func refresh(_ chain: VHDChain, offset: UInt64, length: Int) {
        update(chain, offset: offset, length: length, refresh: true)
    }

    private func update(_ chain: VHDChain, offset: UInt64, length: Int, refresh: Bool) {
        guard length > 0 else { return }
        let (shift, count, open): (UInt64, Int, Bool) = condition.withLock { (blockShift, blockCount, isOpen) }
        guard open else { return }
        let first = Int(offset >> shift)
        let last = min(Int((offset + UInt64(length) - 1) >> shift), count - 1)
        guard first <= last else { return }
        for b in first...last {
            let known = condition.withLock { entries.map { $0[b] } ?? Self.stableBit }
            if known == Self.unknown {
                let r = resolve(chain, block: b, shift: shift)
                condition.withLock { if let e = entries, isOpen, e[b] == Self.unknown { e[b] = install(r) } }
            } else if refresh && known & Self.stableBit == 0 {
                if known & Self.kindMask == Self.split, let map = try? leafBitmap(chain, block: b, shift: shift), !map.full {
                    // Only bits the leaf set since: the slot's copy catches up.
                    condition.withLock { if let e = entries, isOpen, e[b] == known { mixedBlocks?.update(Int(known >> 12), bitmap: map.bitmap) } }
                    continue
                }
                let r = resolve(chain, block: b, shift: shift)
                condition.withLock {
                    guard let e = entries, isOpen, e[b] == known else { return }
                    release(known)
                    e[b] = install(r)
                }
            }
        }
    }

    /// The leaf's bitmap of block `b` (all ones when the batmap says full) and whether it is full.
    private func leafBitmap(_ chain: VHDChain, block b: Int, shift: UInt64) throws -> (bitmap: [UInt8], full: Bool) {
        let leaf = chain.leaf
        let sectors = Int(min(UInt64(1) << shift, chain.virtualSize - (UInt64(b) << shift)) / 512)
        if leaf.batmapSaysFull(b) { return ([UInt8](repeating: 0xff, count: leaf.bitmapBytes), true) }
        let map = try leaf.bitmap(b)
        var full = true
        map.withUnsafeBytes { raw in
            let whole = sectors / 8
            for i in 0..<whole where raw[i] != 0xff { full = false; return }
            if sectors % 8 != 0, raw[whole] & ~(0xff >> UInt8(sectors % 8)) != ~(0xff >> UInt8(sectors % 8)) { full = false }
        }
        return (map, full)
    }

    /// The entry a resolution becomes (lock held): a slot for a split block, mixed when none is free.
    private func install(_ r: Resolution) -> UInt64 {
        switch r {
        case let .entry(e): return e
        case let .split(leafOffset, under, bitmap):
            guard let slot = mixedBlocks?.add(leafOffset: leafOffset, under: under, bitmap: bitmap) else { return Self.mixed }
            return Self.split | UInt64(slot) << 12
        }
    }

    /// Frees what `entry` holds (lock held): its slot, for a split block.
    private func release(_ entry: UInt64) {
        if entry & Self.kindMask == Self.split { mixedBlocks?.remove(Int(entry >> 12)) }
    }

    /// What block `b` reads from: one contiguous file range, zeros, the leaf over one of those
    /// (split), or mixed.
    private func resolve(_ chain: VHDChain, block b: Int, shift: UInt64) -> Resolution {
        let start = UInt64(b) << shift
        let size = chain.virtualSize
        guard start < size else { return .entry(Self.mixed) }
        let count = Int(min(UInt64(1) << shift, size - start))
        guard count % 512 == 0 else { return .entry(Self.mixed) }
        struct Mixed: Error {}
        // The whole block as one piece.
        var whole = true
        var kind = Self.unknown
        var storeIndex = 0
        var fileOffset: UInt64 = 0
        var covered = 0
        // The leaf's sectors over one piece (a block the leaf has allocated and holds in part).
        let leaf = chain.leaf
        var split = leaf.diskType != .fixed && mapped.first == true && leaf.isAllocated(b)
        let leafBase = split ? leaf.dataOffset(block: b, sector: 0) : 0
        var under = Self.unknown
        var underIndex = 0
        var underBase: UInt64 = 0
        do {
            try chain.mapRead(sector: start / 512, count: count) { segment in
                switch segment {
                case let .zero(at, n):
                    if whole {
                        if (kind == Self.unknown || kind == Self.zero) && at == covered { kind = Self.zero } else { whole = false }
                    }
                    if split {
                        if under == Self.unknown || under == Self.zero { under = Self.zero } else { split = false }
                    }
                    covered += n
                case let .data(store, offset, at, n):
                    guard let index = stores.firstIndex(of: ObjectIdentifier(store)), mapped[index] else { throw Mixed() }
                    if whole {
                        if kind == Self.unknown && at == covered {
                            kind = Self.file
                            storeIndex = index
                            fileOffset = offset
                        } else if kind != Self.file || index != storeIndex || fileOffset + UInt64(at) != offset || at != covered {
                            whole = false
                        }
                    }
                    if split {
                        if index == 0 {
                            if offset != leafBase + UInt64(at) { split = false }
                        } else if offset < UInt64(at) {
                            split = false
                        } else if under == Self.unknown {
                            under = Self.file
                            underIndex = index
                            underBase = offset - UInt64(at)
                        } else if under != Self.file || index != underIndex || underBase != offset - UInt64(at) {
                            split = false
                        }
                    }
                    covered += n
                }
                if !whole && !split { throw Mixed() }
            }
        } catch {
            return .entry(Self.mixed)
        }
        guard covered == count else { return .entry(Self.mixed) }
        if whole {
            switch kind {
            case Self.zero:
                return .entry(Self.zero | (allStable ? Self.stableBit : 0))
            case Self.file where fileOffset % 512 == 0:
                return .entry(Self.fileEntry(store: storeIndex, sector: fileOffset / 512, stable: allStable || storeIndex == 0))
            default:
                break
            }
        }
        guard split, under != Self.unknown, leafBase % 512 == 0, underBase % 512 == 0,
              let map = try? leafBitmap(chain, block: b, shift: shift), !map.full else { return .entry(Self.mixed) }
        let underEntry = under == Self.zero ? Self.zero : Self.fileEntry(store: underIndex, sector: underBase / 512, stable: false)
        return .split(leafOffset: leafBase, under: underEntry, bitmap: map.bitmap)
    }

    /// Notes a write of `[offset, offset+length)` queued for the chain thread (called on the
    /// event loop, in request order); the ticket ends it in `writeDone`.
    func writeQueued(offset: UInt64, length: UInt64) -> UInt64 {
        condition.withLock {
            nextTicket += 1
            // An empty write still orders the reads of its offset behind it.
            pendingWrites.append((nextTicket, offset..<offset + max(length, 1)))
            return nextTicket
        }
    }

    /// Ends the write with `ticket` to `[offset, offset+length)`: it is no longer pending. Unless
    /// it was `refreshed` (a WRITE that succeeded, its blocks brought up to date by `refresh`),
    /// forgets what it may have changed: every entry of its blocks but the stable ones. Called
    /// on the chain thread after the write, before its reply.
    func writeDone(ticket: UInt64, offset: UInt64, length: UInt64, refreshed: Bool = false) {
        condition.withLock {
            if let i = pendingWrites.firstIndex(where: { $0.ticket == ticket }) { pendingWrites.remove(at: i) }
            guard !refreshed, let e = entries, length > 0, blockCount > 0 else { return }
            let first = Int(offset >> blockShift)
            let last = min(Int((offset + length - 1) >> blockShift), blockCount - 1)
            guard first <= last else { return }
            for b in first...last where e[b] & Self.stableBit == 0 {
                release(e[b])
                e[b] = Self.unknown
            }
        }
    }

    // MARK: - Event loops

    /// The plan of a READ of `length` bytes at `offset` when every block it touches is known and
    /// no pending write overlaps it, else nil. A plan returned counts as a reader until `finished`.
    func plan(offset: UInt64, length: Int) -> ReadPlan? {
        guard length > 0 else { return nil }
        return condition.withLock { () -> ReadPlan? in
            guard isOpen, let e = entries, offset < size, UInt64(length) <= size - offset else { return nil }
            let wanted = offset..<offset + UInt64(length)
            guard !pendingWrites.contains(where: { $0.range.overlaps(wanted) }) else { return nil }
            var usedSectorMap = false
            guard let plan = walk(e, offset: offset, length: length, { plan, entry, inBlock, at, n in
                switch entry & Self.kindMask {
                case Self.zero: plan.zero(at, n)
                case Self.file: plan.add(sources[Int((entry >> 4) & 0xff)]!, (entry >> 12) * 512 + inBlock, at, n)
                case Self.split:
                    addMixed(&plan, slot: Int(entry >> 12), inBlock: Int(inBlock), at: at, count: n)
                    usedSectorMap = true
                default: return false
                }
                return true
            }) else { return nil }
            readers += 1
            if usedSectorMap { counters.mixedReads += 1 }
            return plan
        }
    }

    /// Adds `count` bytes at `inBlock` of the mixed block in `slot` to `plan` (at `at`), one piece
    /// per run of its sector map: the leaf's sectors from the leaf, the others from what lies
    /// under the block (lock held).
    private func addMixed(_ plan: inout ReadPlan, slot: Int, inBlock: Int, at: Int, count: Int) {
        let mixed = mixedBlocks!
        let leafOffset = mixed.leafOffset[slot]
        let under = mixed.under[slot]
        let end = inBlock + count
        let lastSector = (end + 511) >> 9
        var position = inBlock
        while position < end {
            let s = position >> 9
            let present = mixed.isPresent(slot, s)
            let stop = min(mixed.runEnd(slot, from: s + 1, to: lastSector, present: present) << 9, end)
            let n = stop - position
            let into = at + position - inBlock
            if present {
                plan.add(sources[0]!, leafOffset + UInt64(position), into, n)
            } else if under & Self.kindMask == Self.zero {
                plan.zero(into, n)
            } else {
                plan.add(sources[Int((under >> 4) & 0xff)]!, (under >> 12) * 512 + UInt64(position), into, n)
            }
            position = stop
        }
    }

    /// Walks the blocks under `[offset, offset+length)` of `entries` (lock held), letting `add`
    /// put each block's part into the plan (entry, offset in the block, offset in the request,
    /// bytes); nil as soon as `add` refuses one.
    private func walk(_ entries: UnsafeMutablePointer<UInt64>, offset: UInt64, length: Int,
                      _ add: (inout ReadPlan, UInt64, UInt64, Int, Int) -> Bool) -> ReadPlan? {
        let blockSize = UInt64(1) << blockShift
        var plan = ReadPlan(length: length, generation: generation)
        var at = 0
        var position = offset
        while at < length {
            let inBlock = position & (blockSize - 1)
            let n = Int(min(UInt64(length - at), blockSize - inBlock))
            guard add(&plan, entries[Int(position >> blockShift)], inBlock, at, n) else { return nil }
            at += n
            position += UInt64(n)
        }
        return plan
    }

    /// Ends a READ planned by `plan`: counts it and lets `close` go on when it was the last.
    func finished(bytes: Int, micros: UInt64, failed: Bool) {
        end(write: false, bytes: bytes, micros: micros, failed: failed)
    }

    /// Where a fast WRITE of `length` bytes at `offset` goes: the leaf's pieces, when the range
    /// is whole sectors, the map is open on a writable leaf and every block it touches is known
    /// as wholly present in the leaf, or as mixed with every written sector present in the leaf;
    /// else nil (the write takes the chain thread). A target returned counts as a writer until
    /// `writeFinished`.
    func writeTarget(offset: UInt64, length: Int) -> ReadPlan? {
        guard length > 0, offset % 512 == 0, length % 512 == 0 else { return nil }
        return condition.withLock { () -> ReadPlan? in
            guard isOpen, leafWritable, let e = entries, offset < size, UInt64(length) <= size - offset else { return nil }
            var intoMixed = false
            guard let plan = walk(e, offset: offset, length: length, { plan, entry, inBlock, at, n in
                switch entry & Self.kindMask {
                case Self.file:
                    // Wholly in the leaf (store 0), stable: never forgotten while this map is open.
                    guard entry & Self.stableBit != 0, (entry >> 4) & 0xff == 0 else { return false }
                    plan.add(sources[0]!, (entry >> 12) * 512 + inBlock, at, n)
                case Self.split:
                    // Sectors the leaf holds already: they stay present while this map is open.
                    let slot = Int(entry >> 12)
                    guard let mixed = mixedBlocks, mixed.allPresent(slot, Int(inBlock >> 9)..<Int((inBlock + UInt64(n)) >> 9)) else { return false }
                    plan.add(sources[0]!, mixed.leafOffset[slot] + inBlock, at, n)
                    intoMixed = true
                default:
                    return false
                }
                return true
            }) else { return nil }
            writers += 1
            if intoMixed { counters.mixedWrites += 1 }
            return plan
        }
    }

    /// Ends a fast write taken with `writeTarget`: counts it and lets `close` go on when it was the last.
    func writeFinished(bytes: Int, micros: UInt64, failed: Bool) {
        end(write: true, bytes: bytes, micros: micros, failed: failed)
    }

    /// Counts a finished READ or fast write, and wakes `close` when it was the last one.
    private func end(write: Bool, bytes: Int, micros: UInt64, failed: Bool) {
        condition.withLock {
            if write { writers -= 1 } else { readers -= 1 }
            if failed {
                counters.errors += 1
            } else if write {
                counters.writes += 1
                counters.writeBytes += UInt64(bytes)
            } else {
                counters.reads += 1
                counters.bytes += UInt64(bytes)
            }
            counters.latencyTotal += micros
            counters.latencyMax = max(counters.latencyMax, micros)
            if readers == 0 && writers == 0 && !isOpen { condition.broadcast() }
        }
    }

    /// A copy of the counters.
    func snapshot() -> Counters { condition.withLock { counters } }

    /// What the map holds for the block at `offset` (tests): nil when unknown or closed, else
    /// whether it is a mixed block with a sector map and that map (the leaf's bitmap copy).
    func sectorMap(at offset: UInt64) -> (known: Bool, bitmap: [UInt8]?) {
        condition.withLock {
            guard isOpen, let e = entries, offset < size else { return (false, nil) }
            let entry = e[Int(offset >> blockShift)]
            guard entry != Self.unknown else { return (false, nil) }
            guard entry & Self.kindMask == Self.split, let mixed = mixedBlocks else { return (true, nil) }
            return (true, mixed.bitmap(Int(entry >> 12)))
        }
    }

    /// Slots of mixed blocks in use (tests).
    var mixedBlockCount: Int { condition.withLock { mixedBlocks?.count ?? 0 } }
}
