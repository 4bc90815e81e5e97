#if canImport(Glibc)
import Glibc
#endif

/// The sector maps of the blocks the `ReadMap` knows as held in part by the leaf: for each such
/// block (a slot), where its data starts in the leaf file, a copy of the leaf's sector bitmap of
/// the block, and where the sectors the leaf does not hold read from (one entry of the map:
/// zeros, or one contiguous range of one file, named by its sector 0).
///
/// Bits are only ever set while the chain is open (the engine never clears one), so a copy made
/// after a write answered can only lag behind the leaf by sectors a write still in flight is
/// setting, and those are the ones `ReadMap` sends to the chain thread's queue.
///
/// Bounded: at most `capacity` slots (a 512-byte bitmap each for 2 MiB blocks), allocated with
/// calloc so that slots never used take no memory. A block that finds no free slot stays off the
/// map (the chain thread reads it). Not thread-safe: `ReadMap` guards it with its lock.
final class MixedBlocks {
    /// Bytes of one block's bitmap (one bit a sector, the first sector in the high bit of byte 0).
    let bitmapBytes: Int
    /// Most slots.
    let capacity: Int
    private let bits: UnsafeMutablePointer<UInt8>?
    /// Byte offset of each slot's block data (sector 0) in the leaf file.
    private(set) var leafOffset: [UInt64] = []
    /// What each slot's absent sectors read from: `ReadMap.zero`, or a `ReadMap.file` entry whose
    /// offset is the block's sector 0 in that file.
    private(set) var under: [UInt64] = []
    private var freeSlots: [Int] = []
    /// Slots in use.
    private(set) var count = 0

    /// Memory the bitmaps may take at most.
    static let budget = 8 << 20

    /// Room for the bitmaps of blocks of `sectorsPerBlock` sectors, at most `blocks` of them.
    init(sectorsPerBlock: Int, blocks: Int) {
        bitmapBytes = max(1, (sectorsPerBlock + 7) / 8)
        capacity = max(0, min(blocks, Self.budget / bitmapBytes))
        bits = capacity > 0 ? calloc(capacity, bitmapBytes)?.assumingMemoryBound(to: UInt8.self) : nil
    }

    deinit { free(bits) }

    /// A new slot holding `bitmap` (at least `bitmapBytes` long), or nil when none is free.
    func add(leafOffset offset: UInt64, under entry: UInt64, bitmap: [UInt8]) -> Int? {
        guard let bits, bitmap.count >= bitmapBytes else { return nil }
        let slot: Int
        if let s = freeSlots.popLast() {
            slot = s
            leafOffset[s] = offset
            under[s] = entry
        } else {
            guard leafOffset.count < capacity else { return nil }
            slot = leafOffset.count
            leafOffset.append(offset)
            under.append(entry)
        }
        bitmap.withUnsafeBytes { (bits + slot * bitmapBytes).initialize(from: $0.bindMemory(to: UInt8.self).baseAddress!, count: bitmapBytes) }
        count += 1
        return slot
    }

    /// Replaces the bitmap of `slot` with the leaf's newer `bitmap`.
    func update(_ slot: Int, bitmap: [UInt8]) {
        guard let bits, bitmap.count >= bitmapBytes else { return }
        bitmap.withUnsafeBytes { (bits + slot * bitmapBytes).update(from: $0.bindMemory(to: UInt8.self).baseAddress!, count: bitmapBytes) }
    }

    /// Frees `slot`.
    func remove(_ slot: Int) {
        freeSlots.append(slot)
        count -= 1
    }

    /// Frees every slot.
    func removeAll() {
        leafOffset.removeAll()
        under.removeAll()
        freeSlots.removeAll()
        count = 0
    }

    /// Whether the leaf holds sector `s` of the block in `slot`.
    @inline(__always)
    func isPresent(_ slot: Int, _ s: Int) -> Bool {
        bits![slot * bitmapBytes + (s >> 3)] & (0x80 >> UInt8(s & 7)) != 0
    }

    /// The first sector at or after `s` (below `end`) whose bit differs from `present`, or `end`:
    /// the end of the run that starts at `s`. Skips whole bytes of equal bits.
    func runEnd(_ slot: Int, from s: Int, to end: Int, present: Bool) -> Int {
        let map = bits! + slot * bitmapBytes
        let same: UInt8 = present ? 0xff : 0
        var t = s
        while t < end {
            if t & 7 == 0 && end - t >= 8 && map[t >> 3] == same {
                t += 8
                continue
            }
            if (map[t >> 3] & (0x80 >> UInt8(t & 7)) != 0) != present { return t }
            t += 1
        }
        return end
    }

    /// Whether the leaf holds every sector of `range` of the block in `slot`.
    func allPresent(_ slot: Int, _ range: Range<Int>) -> Bool {
        runEnd(slot, from: range.lowerBound, to: range.upperBound, present: true) == range.upperBound
    }

    /// A copy of the bitmap of `slot` (tests).
    func bitmap(_ slot: Int) -> [UInt8] {
        Array(UnsafeBufferPointer(start: bits! + slot * bitmapBytes, count: bitmapBytes))
    }
}
