import Foundation
import VHD

/// Where each block of the virtual disk reads from, learnt by the chain thread and consulted by
/// the event loops, so that a READ of blocks already known is planned, and usually read from the
/// page cache, without a hop to the chain thread.
///
/// A block is known when its whole range lies contiguously in one file of the chain, or reads
/// as zeros. A block wholly present in the leaf (or in any image of a read-only chain) never
/// moves while the chain is open: writes land in place. Any other entry is forgotten whenever a
/// write touches the block, before that write is answered. A READ overlapping a write or
/// WRITE_ZEROES that is queued or running takes the chain thread's queue, as every request did
/// before (a READ sent after a WRITE whose reply it did not wait for still sees it); READs of
/// other bytes go on from the map (a pending write changes no entry but of blocks it touches,
/// and those only for the sectors it writes). The map is closed, and its
/// readers waited for, before the chain is paused, reopened or closed.
///
/// Fast writes: a plain WRITE (no FUA) of whole sectors lying wholly in blocks known as wholly
/// present in the writable leaf is a pure overwrite of allocated, present sectors: the engine
/// would only pwrite the data (`VHDImage.writeInBlock`: the block has a BAT entry, so no
/// allocation; `markPresent` finds every bit set, so no bitmap write; `commit` finds nothing
/// dirty). Such writes are done by the event loop itself with pwrite on the leaf's descriptor
/// (`writeTarget`, `writeFinished`), without the chain thread. Why that is safe:
/// - Their entries cannot go stale: a leaf block's BAT entry and bitmap never change back while
///   the chain is open (blocks are only ever allocated at the end of the file and bits only ever
///   set; WRITE_ZEROES writes zeros in place), which is why `writeDone` keeps stable entries.
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
final class ReadMap: @unchecked Sendable {
    /// Granularity of the map for images without blocks (fixed VHDs).
    static let defaultBlockSize = 2 << 20

    // Entry encoding: kind in bits 0-1, stable in bit 2, store index in bits 3-10, file offset
    // in 512-byte sectors from bit 11.
    static let unknown: UInt64 = 0
    static let mixed: UInt64 = 1
    static let zero: UInt64 = 2
    static let file: UInt64 = 3
    static let stableBit: UInt64 = 4

    /// Counters of the READs answered from the map (merged into `DatapathStats`).
    struct Counters {
        var reads: UInt64 = 0
        var bytes: UInt64 = 0
        var errors: UInt64 = 0
        var latencyTotal: UInt64 = 0
        var latencyMax: UInt64 = 0
        var writes: UInt64 = 0
        var writeBytes: UInt64 = 0
    }

    private let condition = NSCondition()
    // Guarded by `condition`.
    private var isOpen = false
    private var entries: UnsafeMutablePointer<UInt64>?
    private var blockCount = 0
    private var blockShift: UInt64 = 21
    private var size: UInt64 = 0
    private var fds: [Int32] = []
    private var readers = 0
    private var writers = 0
    private var leafWritable = false
    /// Byte ranges of the writes queued for the chain thread, by ticket.
    private var pendingWrites: [(ticket: UInt64, range: Range<UInt64>)] = []
    private var nextTicket: UInt64 = 0
    private var generation: UInt64 = 0
    private var counters = Counters()
    // Chain thread only: the stores of the open chain, by index.
    private var stores: [ObjectIdentifier] = []
    private var allStable = false

    deinit { free(entries) }

    // MARK: - Chain thread

    /// Starts mapping `chain` (every entry unknown). Stores that are not plain files keep the
    /// blocks they hold off the map.
    func open(_ chain: VHDChain) {
        let leaf = chain.leaf
        let block = leaf.diskType == .fixed ? Self.defaultBlockSize : leaf.blockSize
        guard block >= 4096, block.nonzeroBitCount == 1 else { return }
        var ids: [ObjectIdentifier] = []
        var descriptors: [Int32] = []
        for store in chain.images.map(\.store) + (chain.rawParent.map { [$0] } ?? []) {
            ids.append(ObjectIdentifier(store))
            descriptors.append((store as? FileStore)?.descriptor.rawValue ?? -1)
        }
        guard ids.count < 256 else { return }
        let size = chain.virtualSize
        let count = Int((size + UInt64(block) - 1) / UInt64(block))
        // calloc: pages of blocks never read stay untouched (no resident memory).
        guard let table = calloc(max(count, 1), MemoryLayout<UInt64>.size)?.assumingMemoryBound(to: UInt64.self) else { return }
        stores = ids
        allStable = !leaf.writable
        condition.withLock {
            free(entries)
            entries = table
            blockCount = count
            blockShift = UInt64(block.trailingZeroBitCount)
            self.size = size
            fds = descriptors
            leafWritable = leaf.writable && descriptors[0] >= 0
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
            fds = []
        }
        stores = []
    }

    /// Learns the blocks of `[offset, offset+length)` that are not known yet.
    func learn(_ chain: VHDChain, offset: UInt64, length: Int) {
        guard length > 0 else { return }
        let (shift, count, open): (UInt64, Int, Bool) = condition.withLock { (blockShift, blockCount, isOpen) }
        guard open else { return }
        let first = Int(offset >> shift)
        let last = min(Int((offset + UInt64(length) - 1) >> shift), count - 1)
        guard first <= last else { return }
        for b in first...last {
            let known = condition.withLock { entries.map { $0[b] } ?? Self.mixed }
            guard known == Self.unknown else { continue }
            let entry = resolve(chain, block: b, shift: shift)
            condition.withLock { if let e = entries, isOpen, e[b] == Self.unknown { e[b] = entry } }
        }
    }

    /// The entry for block `b`: one contiguous file range, zeros, or mixed.
    private func resolve(_ chain: VHDChain, block b: Int, shift: UInt64) -> UInt64 {
        let start = UInt64(b) << shift
        let size = chain.virtualSize
        guard start < size else { return Self.mixed }
        let count = Int(min(UInt64(1) << shift, size - start))
        guard count % 512 == 0 else { return Self.mixed }
        struct Mixed: Error {}
        var kind = Self.unknown
        var storeIndex = 0
        var fileOffset: UInt64 = 0
        var covered = 0
        do {
            try chain.mapRead(sector: start / 512, count: count) { segment in
                switch segment {
                case let .zero(at, n):
                    guard kind == Self.unknown || kind == Self.zero, at == covered else { throw Mixed() }
                    kind = Self.zero
                    covered += n
                case let .data(store, offset, at, n):
                    guard let index = stores.firstIndex(of: ObjectIdentifier(store)), store is FileStore, at == covered else { throw Mixed() }
                    if kind == Self.unknown {
                        kind = Self.file
                        storeIndex = index
                        fileOffset = offset
                    } else if kind != Self.file || index != storeIndex || fileOffset + UInt64(at) != offset {
                        throw Mixed()
                    }
                    covered += n
                }
            }
        } catch {
            return Self.mixed
        }
        guard covered == count else { return Self.mixed }
        switch kind {
        case Self.zero:
            return Self.zero | (allStable ? Self.stableBit : 0)
        case Self.file:
            guard fileOffset % 512 == 0 else { return Self.mixed }
            let stable = allStable || storeIndex == 0
            return Self.file | (stable ? Self.stableBit : 0) | UInt64(storeIndex) << 3 | (fileOffset / 512) << 11
        default:
            return Self.mixed
        }
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

    /// Forgets what the write with `ticket` to `[offset, offset+length)` may have changed; the
    /// write is no longer pending. Called on the chain thread after the write, before its reply.
    func writeDone(ticket: UInt64, offset: UInt64, length: UInt64) {
        condition.withLock {
            if let i = pendingWrites.firstIndex(where: { $0.ticket == ticket }) { pendingWrites.remove(at: i) }
            guard let e = entries, length > 0, blockCount > 0 else { return }
            let first = Int(offset >> blockShift)
            let last = min(Int((offset + length - 1) >> blockShift), blockCount - 1)
            guard first <= last else { return }
            for b in first...last where e[b] & Self.stableBit == 0 { e[b] = Self.unknown }
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
            guard let plan = walk(e, offset: offset, length: length, { plan, entry, inBlock, at, n in
                switch entry & 3 {
                case Self.zero: plan.zero(at, n)
                case Self.file: plan.add(fds[Int((entry >> 3) & 0xff)], (entry >> 11) * 512 + inBlock, at, n)
                default: return false
                }
                return true
            }) else { return nil }
            readers += 1
            return plan
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
    /// as wholly present in the leaf; else nil (the write takes the chain thread). A target
    /// returned counts as a writer until `writeFinished`.
    func writeTarget(offset: UInt64, length: Int) -> ReadPlan? {
        guard length > 0, offset % 512 == 0, length % 512 == 0 else { return nil }
        return condition.withLock { () -> ReadPlan? in
            guard isOpen, leafWritable, let e = entries, offset < size, UInt64(length) <= size - offset else { return nil }
            guard let plan = walk(e, offset: offset, length: length, { plan, entry, inBlock, at, n in
                // Wholly in the leaf (store 0), stable: never forgotten while this map is open.
                guard entry & 3 == Self.file, entry & Self.stableBit != 0, (entry >> 3) & 0xff == 0 else { return false }
                plan.add(fds[0], (entry >> 11) * 512 + inBlock, at, n)
                return true
            }) else { return nil }
            writers += 1
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
}
