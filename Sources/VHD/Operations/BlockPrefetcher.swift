#if canImport(Glibc)
import Glibc
#endif

/// One allocated block of a differencing child, read for a merge: its sector bitmap clipped to
/// the virtual size, the sectors it holds and the bytes around them.
struct ChildBlock {
    /// The block's index.
    let block: Int
    /// The child's sector bitmap of the block, without sectors past the virtual size.
    let map: [UInt8]
    /// First to last sector the child holds.
    let span: Range<Int>
    /// The sectors read: `span` widened to 4 KiB boundaries of the block (direct I/O sized).
    let read: Range<Int>
    /// Number of sectors the child holds.
    let sectors: Int
    /// The child's bytes of `read`; the consumer may change them until it releases the block.
    let data: UnsafeMutableRawBufferPointer
    /// Which buffer of the prefetcher holds `data`.
    let slot: Int
}

/// Reads a differencing child's allocated blocks in order, a few ahead of their consumer.
///
/// For a child in a local file, reader threads (two, so the disk sees more than one request)
/// read bitmaps and data with direct I/O into a bounded ring of block buffers, block `i` always
/// into buffer `i % depth`, so memory stays at `depth` blocks. While blocks come mostly full, a
/// reader fetches the next one's bitmap and whole data in one request (else the bitmap, then the
/// span it shows). They work from a plan made on the calling thread and their own descriptors,
/// never touching the image object. A child in any other store (an NFS session, a memory store)
/// is read on the calling thread as each block is asked for. `stop()` (also run by `deinit`)
/// ends and joins the readers.
final class BlockPrefetcher {
    /// Blocks read ahead (for 2 MiB blocks; fewer for larger ones, never under two).
    static let defaultDepth = 4
    /// Reader threads for a file.
    static let defaultReaders = 2

    private let ring: UnsafeMutableRawBufferPointer
    private let blockSize: Int
    private let slots: Int
    private let headroom: Int
    private var inline: InlineReader?
    private let handOff: HandOff?
    private var threads: [ReaderThread] = []
    private var directDescriptor: Int32 = -1
    private let childPath: String

    /// Starts reading `child`'s allocated blocks: `depth` 2 MiB blocks ahead (the same memory
    /// in fewer larger blocks, at least two) with `readers` threads for a file.
    init(child: VHDImage, depth: Int = BlockPrefetcher.defaultDepth,
         readers: Int = BlockPrefetcher.defaultReaders) throws {
        blockSize = child.blockSize
        childPath = child.path
        let file = child.store as? any DescriptorStore
        slots = file != nil ? max(2, min(depth, depth * (2 << 20) / blockSize)) : 1
        // In front of each block's buffer, room for its bitmap and the 4 KiB pages around it.
        headroom = file != nil ? (child.bitmapBytes + 8191) & ~4095 : 0
        ring = UnsafeMutableRawBufferPointer.allocate(byteCount: slots * (headroom + blockSize), alignment: 4096)
        guard let file else {
            inline = InlineReader(child: child)
            handOff = nil
            return
        }
        let plan = ReadPlan(child: child)
        let h = HandOff(count: plan.blocks.count, slots: slots)
        handOff = h
        // A descriptor of our own for direct reads (the store's may be in use for metadata).
        directDescriptor = open("/proc/self/fd/\(file.descriptor.rawValue)", O_RDONLY | 0o40000 /* O_DIRECT */ | O_CLOEXEC)
        let io = ReadIO(path: child.path, buffered: file.descriptor.rawValue, direct: directDescriptor,
                        ring: ring, headroom: headroom, blockSize: blockSize, slots: slots, plan: plan)
        // A throw from here on runs deinit, which stops what started and frees the ring.
        for r in 0..<max(1, readers) {
            threads.append(try ReaderThread(name: "coalesce reader") {
                io.run(first: r, every: max(1, readers), handOff: h)
            })
        }
        Self.live.add(childPath)
    }

    deinit {
        stop()
        if directDescriptor >= 0 { close(directDescriptor) }
        ring.deallocate()
    }

    /// The next allocated block holding sectors (in block order), or nil after the last; throws
    /// a read error once the blocks before the one that failed are consumed.
    func next() throws -> ChildBlock? {
        if let h = handOff { return try h.next() }
        return try inline?.next(into: UnsafeMutableRawBufferPointer(rebasing: ring[0..<blockSize]))
    }

    /// Gives the block's buffer back for reading ahead (before asking for the next block).
    func release(_ block: ChildBlock) { handOff?.release() }

    /// Stops reading ahead and joins the reader threads (idempotent).
    func stop() {
        guard !threads.isEmpty else { return }
        handOff?.stop()
        for t in threads { t.join() }
        threads = []
        Self.live.remove(childPath)
    }

    /// Child paths with reader threads started and not yet joined (what tests look at).
    static let live = LivePaths()

    /// Whether reader threads for the child at `path` are running.
    static func readerRunning(for path: String) -> Bool { live.contains(path) }

    /// The first set bit below `limit`, found a byte at a time.
    static func firstSet(_ map: [UInt8], below limit: Int) -> Int? {
        for i in 0..<(limit + 7) >> 3 where map[i] != 0 {
            let s = i << 3 + map[i].leadingZeroBitCount
            return s < limit ? s : nil
        }
        return nil
    }

    /// The last set bit below `limit` (bits at and past `limit` must be clear).
    static func lastSet(_ map: [UInt8], below limit: Int) -> Int? {
        for i in stride(from: (limit + 7) >> 3 - 1, through: 0, by: -1) where map[i] != 0 {
            return i << 3 + 7 - map[i].trailingZeroBitCount
        }
        return nil
    }

    /// The block described by `map` (clipped to `limit` here), or nil if it holds no sector:
    /// span, 4 KiB-aligned range to read, sector count.
    static func shape(_ map: inout [UInt8], limit: Int, sectorsPerBlock spb: Int)
        -> (span: Range<Int>, read: Range<Int>, sectors: Int)? {
        if limit < spb { for s in limit..<spb { map[s >> 3] &= ~(0x80 >> UInt8(s & 7)) } }
        guard let first = firstSet(map, below: limit), let last = lastSet(map, below: limit) else { return nil }
        return (first..<last + 1, (first & ~7)..<min(spb, (last + 8) & ~7), SectorBitmap.population(map, count: limit))
    }
}

/// Where each allocated child block lives, worked out on the calling thread so the readers
/// never touch the image object.
private struct ReadPlan: Sendable {
    /// One allocated block.
    struct Entry: Sendable {
        /// Block index.
        let block: Int
        /// Byte offset of its sector bitmap, nil when the batmap says the block is full.
        let bitmapAt: UInt64?
        /// Byte offset of its sector 0.
        let dataAt: UInt64
        /// Sectors of the block inside the virtual size.
        let limit: Int
    }

    let blocks: [Entry]
    let bitmapBytes: Int
    let sectorsPerBlock: Int

    init(child: VHDImage) {
        let spb = child.sectorsPerBlock
        bitmapBytes = child.bitmapBytes
        sectorsPerBlock = spb
        blocks = (0..<child.blockCount).filter { child.isAllocated($0) }.map { b in
            Entry(block: b, bitmapAt: child.batmapSaysFull(b) ? nil : UInt64(child.entry(b)) * 512,
                  dataAt: child.dataOffset(block: b, sector: 0),
                  limit: Int(min(UInt64(spb), (child.virtualSize - UInt64(b) * UInt64(spb) * 512 + 511) / 512)))
        }
    }
}

/// What reader threads share: descriptors, the ring and the plan (they read, never write, the
/// plan; each writes only the ring buffer of the block it reads).
private final class ReadIO: @unchecked Sendable {
    let path: String
    let buffered: Int32
    let direct: Int32
    let ring: UnsafeMutableRawBufferPointer
    let headroom: Int
    let blockSize: Int
    let slots: Int
    let plan: ReadPlan

    init(path: String, buffered: Int32, direct: Int32, ring: UnsafeMutableRawBufferPointer, headroom: Int,
         blockSize: Int, slots: Int, plan: ReadPlan) {
        (self.path, self.buffered, self.direct, self.ring, self.headroom, self.blockSize, self.slots, self.plan) =
            (path, buffered, direct, ring, headroom, blockSize, slots, plan)
    }

    /// One reader: blocks `first`, `first + every`, ... of the plan, each once its buffer is free.
    func run(first: Int, every: Int, handOff: HandOff) {
        let full = [UInt8](repeating: 0xff, count: plan.bitmapBytes)
        let spb = plan.sectorsPerBlock
        // Whether this reader's last block was mostly full (then the next is read whole with its bitmap).
        var wholeBlocks = true
        var seq = first
        while seq < plan.blocks.count {
            guard handOff.waitForSlot(seq) else { return }
            let e = plan.blocks[seq]
            let slot = seq % slots
            // Where sector 0 of the block goes in the ring; the bitmap's pages go just in front.
            let base = slot * (headroom + blockSize) + headroom
            do {
                var map = full
                var whole = false
                if let at = e.bitmapAt {
                    let lo = at & ~4095
                    let skip = Int(at - lo)
                    if wholeBlocks && e.dataAt % 4096 == 0 {
                        let head = Int(e.dataAt - lo)
                        try read(UnsafeMutableRawBufferPointer(rebasing: ring[base - head..<base + blockSize]), at: lo)
                        map = Array(ring[base - head + skip..<base - head + skip + plan.bitmapBytes])
                        whole = true
                    } else {
                        let n = Int((at + UInt64(plan.bitmapBytes) - lo + 4095) & ~4095)
                        try read(UnsafeMutableRawBufferPointer(rebasing: ring[base - n..<base]), at: lo)
                        map = Array(ring[base - n + skip..<base - n + skip + plan.bitmapBytes])
                    }
                }
                guard let shape = BlockPrefetcher.shape(&map, limit: e.limit, sectorsPerBlock: spb) else {
                    wholeBlocks = false
                    handOff.deliver(nil, seq: seq)
                    seq += every
                    continue
                }
                let data = UnsafeMutableRawBufferPointer(
                    rebasing: ring[base + shape.read.lowerBound * 512..<base + shape.read.upperBound * 512])
                if !whole { try read(data, at: e.dataAt + UInt64(shape.read.lowerBound) * 512) }
                wholeBlocks = shape.read.count * 2 >= spb
                handOff.deliver(ChildBlock(block: e.block, map: map, span: shape.span, read: shape.read,
                                           sectors: shape.sectors, data: data, slot: slot), seq: seq)
            } catch {
                return handOff.fail(error, seq: seq)
            }
            seq += every
        }
    }

    /// Fills `buffer` from `offset`: direct when both are 4 KiB-aligned (and the size a multiple).
    private func read(_ buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        let aligned = direct >= 0 && offset % 4096 == 0 && buffer.count % 4096 == 0
            && Int(bitPattern: buffer.baseAddress) % 4096 == 0
        var fd = aligned ? direct : buffered
        var done = 0
        while done < buffer.count {
            let n = pread(fd, buffer.baseAddress! + done, buffer.count - done, off_t(offset) + off_t(done))
            if n < 0 {
                let e = errno
                if e == EINTR { continue }
                // A filesystem may refuse direct I/O on some ranges: go through the page cache.
                if e == EINVAL && fd == direct { fd = buffered; continue }
                throw VHDError.io(path: path, operation: "read", errno: e)
            }
            if n == 0 { throw VHDError.shortRead(path: path, offset: offset, count: buffer.count) }
            done += n
        }
    }
}

/// Reads the child's blocks on the calling thread, through the image (stores other than files).
private struct InlineReader {
    let child: VHDImage
    let blocks: [Int]
    let full: [UInt8]
    var cursor = 0

    init(child: VHDImage) {
        self.child = child
        blocks = (0..<child.blockCount).filter { child.isAllocated($0) }
        full = [UInt8](repeating: 0xff, count: child.bitmapBytes)
    }

    /// Reads the next block holding sectors into `buffer` (one block long).
    mutating func next(into buffer: UnsafeMutableRawBufferPointer) throws -> ChildBlock? {
        let spb = child.sectorsPerBlock
        while cursor < blocks.count {
            let b = blocks[cursor]
            cursor += 1
            let limit = Int(min(UInt64(spb), (child.virtualSize - UInt64(b) * UInt64(spb) * 512 + 511) / 512))
            var map = child.batmapSaysFull(b) ? full : try child.bitmap(b)
            guard let shape = BlockPrefetcher.shape(&map, limit: limit, sectorsPerBlock: spb) else { continue }
            let data = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<shape.read.count * 512])
            try child.store.read(into: data, at: child.dataOffset(block: b, sector: shape.read.lowerBound))
            return ChildBlock(block: b, map: map, span: shape.span, read: shape.read, sectors: shape.sectors,
                              data: data, slot: 0)
        }
        return nil
    }
}

/// What the readers and the consumer share, under one mutex and one condition: which blocks of
/// the plan are read (or hold nothing, or failed), how many the consumer is done with, and the
/// order to stop. Block `seq` may be read once block `seq - slots` is done with.
private final class HandOff: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private let count: Int
    private let slots: Int
    /// Results by plan index: a block, or nil for a block without sectors.
    private var ready: [Int: ChildBlock?] = [:]
    private var failure: (seq: Int, error: any Error)?
    /// Plan entries the consumer is done with.
    private var done = 0
    /// The plan entry the consumer wants next.
    private var wanted = 0
    private var stopping = false

    init(count: Int, slots: Int) {
        self.count = count
        self.slots = slots
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        condition.deallocate()
    }

    private func locked<T>(_ body: () throws -> T) rethrows -> T {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }

    /// Reader: waits until the buffer of plan entry `seq` is free; false once told to stop.
    func waitForSlot(_ seq: Int) -> Bool {
        locked {
            while seq >= done + slots && !stopping { pthread_cond_wait(condition, mutex) }
            return !stopping
        }
    }

    /// Reader: entry `seq` is read (nil: it holds no sector).
    func deliver(_ block: ChildBlock?, seq: Int) {
        locked { ready[seq] = .some(block) }
        pthread_cond_broadcast(condition)
    }

    /// Reader: entry `seq` could not be read.
    func fail(_ error: any Error, seq: Int) {
        locked { if failure == nil || failure!.seq > seq { failure = (seq, error) } }
        pthread_cond_broadcast(condition)
    }

    /// Consumer: the next block holding sectors, nil after the last entry; throws the error of
    /// the entry it reaches, if that one failed.
    func next() throws -> ChildBlock? {
        let (block, skipped): (ChildBlock?, Bool) = try locked {
            var skipped = false
            while wanted < count {
                while ready[wanted] == nil && failure?.seq != wanted { pthread_cond_wait(condition, mutex) }
                guard let result = ready.removeValue(forKey: wanted) else { throw failure!.error }
                wanted += 1
                if let b = result { return (b, skipped) }
                done += 1
                skipped = true
            }
            return (nil, skipped)
        }
        if skipped { pthread_cond_broadcast(condition) }
        return block
    }

    /// Consumer: done with the block last returned; its buffer may be read into again.
    func release() {
        locked { done += 1 }
        pthread_cond_broadcast(condition)
    }

    /// Consumer: no more blocks wanted.
    func stop() {
        locked { stopping = true }
        pthread_cond_broadcast(condition)
    }
}

/// A thread-safe multiset of paths.
final class LivePaths: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private var counts: [String: Int] = [:]

    init() { pthread_mutex_init(mutex, nil) }

    /// Adds one occurrence of `path`.
    func add(_ path: String) {
        pthread_mutex_lock(mutex); defer { pthread_mutex_unlock(mutex) }
        counts[path, default: 0] += 1
    }

    /// Removes one occurrence of `path`.
    func remove(_ path: String) {
        pthread_mutex_lock(mutex); defer { pthread_mutex_unlock(mutex) }
        if let n = counts[path] { counts[path] = n > 1 ? n - 1 : nil }
    }

    /// Whether `path` is present.
    func contains(_ path: String) -> Bool {
        pthread_mutex_lock(mutex); defer { pthread_mutex_unlock(mutex) }
        return counts[path] != nil
    }
}
