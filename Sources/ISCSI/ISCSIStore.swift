import Foundation
import VHD

/// One iSCSI LUN as a `BlockStore`: byte-offset reads and writes become READ(16) and WRITE(16)
/// of whole blocks, split at the target's maximum transfer length into commands that are in
/// flight together on one session; an unaligned head or tail is read, patched and written
/// back (one at a time, so that two such writes to one block cannot undo each other).
/// `sync` is SYNCHRONIZE CACHE(16); `discard` is UNMAP where the LUN offers it and reads
/// unmapped blocks as zeros. Calls from several threads run on sessions of their own; a
/// target that stops answering is waited for as the device's hold policy says.
public final class ISCSIStore: OutageReportingStore, ConcurrentReadStore, @unchecked Sendable {
    /// The LUN's sessions.
    public let device: ISCSIDevice
    /// Whether writes are allowed.
    public let writable: Bool
    /// Most bytes one READ or WRITE command moves.
    public let commandBytes: Int
    private let blockSize: Int
    private let maxBlocks: Int
    private let patchLock = NSLock()

    /// Most bytes per command unless the target says less (with 8 in flight a session keeps
    /// 8 MiB moving).
    public static let defaultCommandBytes = 1 << 20

    /// A store over `device`'s LUN.
    public init(device: ISCSIDevice, writable: Bool = true, commandBytes: Int = ISCSIStore.defaultCommandBytes) {
        self.device = device
        self.writable = writable
        blockSize = device.info.blockSize
        var blocks = max(1, commandBytes / blockSize)
        let limit = Int(device.info.limits.maximumTransferBlocks)
        if limit > 0 { blocks = min(blocks, limit) }
        maxBlocks = blocks
        self.commandBytes = blocks * blockSize
    }

    /// The LUN's size (fixed: a block device).
    public var size: UInt64 { device.info.size }

    /// A LUN is a block device.
    public var isBlockDevice: Bool { true }

    /// How long the target has not answered and how many requests wait for it.
    public var outage: (seconds: Double, waiting: Int)? {
        device.holding.map { (Date().timeIntervalSince($0.since), $0.operations) }
    }

    /// Requests that have waited for the target.
    public var operationsHeld: UInt64 { device.heldOperations }

    /// Paths that work and paths there are, when the LUN is reached through several portals.
    public var paths: (active: Int, total: Int)? {
        let count = device.pathCount
        return count.total > 1 ? count : nil
    }

    private var name: String { "iscsi:\(device.target.iqn ?? "*")/\(device.lun)" }

    /// Reads the whole buffer (past the end: `VHDError.shortRead`).
    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        guard buffer.count > 0 else { return }
        guard offset <= size, UInt64(buffer.count) <= size - offset else {
            throw VHDError.shortRead(path: name, offset: offset, count: buffer.count)
        }
        let bs = UInt64(blockSize)
        let end = offset + UInt64(buffer.count)
        let alignedStart = (offset + bs - 1) / bs * bs
        let alignedEnd = end / bs * bs
        if alignedStart >= alignedEnd {
            // Within one or two blocks: read them whole and copy.
            try readPartial(into: buffer, at: offset)
            return
        }
        if alignedStart > offset {
            try readPartial(into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<Int(alignedStart - offset)]), at: offset)
        }
        let middle = UnsafeMutableRawBufferPointer(rebasing: buffer[Int(alignedStart - offset)..<Int(alignedEnd - offset)])
        try device.perform("read") { [device, blockSize, maxBlocks] c in
            try c.read(lun: device.lun, lba: alignedStart / bs, into: middle, blockSize: blockSize, maxBlocks: maxBlocks)
        }
        if alignedEnd < end {
            try readPartial(into: UnsafeMutableRawBufferPointer(rebasing: buffer[Int(alignedEnd - offset)...]), at: alignedEnd)
        }
    }

    /// Reads the blocks around `[offset, offset + buffer.count)` and copies the bytes out.
    private func readPartial(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        let bs = UInt64(blockSize)
        let first = offset / bs * bs
        let last = (offset + UInt64(buffer.count) + bs - 1) / bs * bs
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: Int(last - first), alignment: 4096)
        defer { scratch.deallocate() }
        try device.perform("read") { [device, blockSize, maxBlocks] c in
            try c.read(lun: device.lun, lba: first / bs, into: scratch, blockSize: blockSize, maxBlocks: maxBlocks)
        }
        buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: scratch[Int(offset - first)..<Int(offset - first) + buffer.count]))
    }

    /// Writes the whole buffer (durable after `sync`); past the end is an error.
    public func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws {
        guard buffer.count > 0 else { return }
        guard writable else { throw VHDError.io(path: name, operation: "write", errno: EBADF) }
        guard offset <= size, UInt64(buffer.count) <= size - offset else {
            throw VHDError.io(path: name, operation: "write past the end of the LUN", errno: ENOSPC)
        }
        let bs = UInt64(blockSize)
        let end = offset + UInt64(buffer.count)
        let alignedStart = (offset + bs - 1) / bs * bs
        let alignedEnd = end / bs * bs
        if alignedStart >= alignedEnd {
            try writePartial(buffer, at: offset)
            return
        }
        if alignedStart > offset {
            try writePartial(UnsafeRawBufferPointer(rebasing: buffer[0..<Int(alignedStart - offset)]), at: offset)
        }
        let middle = UnsafeRawBufferPointer(rebasing: buffer[Int(alignedStart - offset)..<Int(alignedEnd - offset)])
        try device.perform("write") { [device, blockSize, maxBlocks] c in
            try c.write(lun: device.lun, lba: alignedStart / bs, from: middle, blockSize: blockSize, maxBlocks: maxBlocks)
        }
        if alignedEnd < end {
            try writePartial(UnsafeRawBufferPointer(rebasing: buffer[Int(alignedEnd - offset)...]), at: alignedEnd)
        }
    }

    /// Read-modify-write of the blocks around `[offset, offset + buffer.count)`.
    private func writePartial(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws {
        let bs = UInt64(blockSize)
        let first = offset / bs * bs
        let last = (offset + UInt64(buffer.count) + bs - 1) / bs * bs
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: Int(last - first), alignment: 4096)
        defer { scratch.deallocate() }
        try patchLock.withLock {
            try device.perform("write") { [device, blockSize, maxBlocks] c in
                try c.read(lun: device.lun, lba: first / bs, into: scratch, blockSize: blockSize, maxBlocks: maxBlocks)
            }
            UnsafeMutableRawBufferPointer(rebasing: scratch[Int(offset - first)..<Int(offset - first) + buffer.count]).copyMemory(from: buffer)
            try device.perform("write") { [device, blockSize, maxBlocks] c in
                try c.write(lun: device.lun, lba: first / bs, from: UnsafeRawBufferPointer(scratch), blockSize: blockSize, maxBlocks: maxBlocks)
            }
        }
    }

    /// A LUN's size is the target's: refused.
    public func resize(to newSize: UInt64) throws {
        if newSize == size { return }
        throw ISCSIError.unsupported("a LUN cannot be resized from the initiator (it has \(size) bytes; resize it on the target)")
    }

    /// SYNCHRONIZE CACHE(16): every completed write goes to stable storage.
    public func sync() throws {
        guard writable else { return }
        try device.perform("sync") { [device] c in try c.synchronizeCache(lun: device.lun) }
    }

    /// Whether `discard` can free blocks: the LUN offers UNMAP and reads unmapped blocks as zeros.
    public var canDiscard: Bool {
        let i = device.info
        return i.limits.unmapSupported && (i.limits.unmappedReadZeros || i.capacity.unmappedReadZeros)
    }

    /// UNMAP of the whole blocks of the range (partial blocks at its ends are written with
    /// zeros); false, with nothing changed, when the LUN cannot do it.
    public func discard(offset: UInt64, count: UInt64) throws -> Bool {
        guard writable, canDiscard, count > 0 else { return false }
        guard offset <= size, count <= size - offset else {
            throw VHDError.io(path: name, operation: "discard past the end of the LUN", errno: EINVAL)
        }
        let bs = UInt64(blockSize)
        let end = offset + count
        let alignedStart = (offset + bs - 1) / bs * bs
        let alignedEnd = end / bs * bs
        if alignedStart >= alignedEnd {
            try zero(offset: offset, count: count)
            return true
        }
        if alignedStart > offset { try zero(offset: offset, count: alignedStart - offset) }
        if alignedEnd < end { try zero(offset: alignedEnd, count: end - alignedEnd) }
        let limits = device.info.limits
        let perDescriptor = UInt64(limits.maximumUnmapBlocks == 0 ? UInt32.max : min(limits.maximumUnmapBlocks, UInt32.max))
        var ranges: [(lba: UInt64, blocks: UInt32)] = []
        var lba = alignedStart / bs
        let endLBA = alignedEnd / bs
        while lba < endLBA {
            let n = min(perDescriptor, endLBA - lba)
            ranges.append((lba, UInt32(n)))
            lba += n
        }
        let perCommand = Int(max(1, min(limits.maximumUnmapDescriptors, 256)))
        try device.perform("unmap") { [device] c in try c.unmap(lun: device.lun, ranges: ranges, perCommand: perCommand) }
        return true
    }

    private func zero(offset: UInt64, count: UInt64) throws {
        let zeros = [UInt8](repeating: 0, count: Int(count))
        try zeros.withUnsafeBytes { try write($0, at: offset) }
    }
}

/// READs and WRITEs of whole blocks, at most one command each, go through the device's pipeline
/// (`ISCSIPipeline`): no thread waits for them. What the pipeline cannot do (a request of
/// another shape, no session up yet, a failure) runs the blocking way on a thread of its own,
/// under the device's hold and multipath policy.
extension ISCSIStore: AsyncBlockStore {
    /// Whether the device's pipeline has a session up (asking makes the pipeline, which opens
    /// its sessions in the background).
    public var startsAsynchronously: Bool { device.pipeline?.isUp ?? false }

    /// Starts a read of `buffer.count` bytes at `offset`.
    public func startRead(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64, completion: @escaping @Sendable (Error?) -> Void) {
        let b = TransferredBuffer(buffer)
        start(b, at: offset, isWrite: false, blocking: { try self.read(into: b.bytes, at: offset) }, completion: completion)
    }

    /// Starts a write of `buffer` at `offset`.
    public func startWrite(_ buffer: UnsafeRawBufferPointer, at offset: UInt64, completion: @escaping @Sendable (Error?) -> Void) {
        let b = TransferredBuffer(buffer)
        start(b, at: offset, isWrite: true, blocking: { try self.write(UnsafeRawBufferPointer(b.bytes), at: offset) }, completion: completion)
    }

    /// Queues `buffer` at `offset` on the pipeline, or runs `blocking` on a thread of its own
    /// when the pipeline cannot take it or did not finish it GOOD.
    private func start(_ buffer: TransferredBuffer, at offset: UInt64, isWrite: Bool, blocking: @escaping @Sendable () throws -> Void,
                       completion: @escaping @Sendable (Error?) -> Void) {
        guard !isWrite || writable, let pipeline = pipeline(for: buffer.bytes.count, at: offset) else {
            return runDetached(blocking, completion: completion)
        }
        pipeline.submit(.init(lba: offset / UInt64(blockSize), length: buffer.bytes.count, buffer: buffer.bytes.baseAddress!, isWrite: isWrite)) { ok in
            if ok { completion(nil) } else { runDetached(blocking, completion: completion) }
        }
    }

    /// The pipeline, when `count` bytes at `offset` are whole blocks inside the LUN that one
    /// command moves and a lane is up.
    private func pipeline(for count: Int, at offset: UInt64) -> ISCSIPipeline? {
        guard count > 0, count <= commandBytes, count % blockSize == 0, offset % UInt64(blockSize) == 0,
              offset <= size, UInt64(count) <= size - offset, let p = device.pipeline, p.isUp else { return nil }
        return p
    }
}
