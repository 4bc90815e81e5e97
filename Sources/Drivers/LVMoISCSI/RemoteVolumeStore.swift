import LVM
import VHD

/// An LV on a PV that takes several callers at once and holds through outages (an iSCSI LUN on
/// a pool of sessions): the LV's store, carrying the PV's capabilities so that the data path
/// sends reads and writes of one LV from several threads, as it does for NFS files, and
/// reports the target's outages in its stats.
final class RemoteVolumeStore: ConcurrentReadStore, ConcurrentWriteStore, OutageReportingStore, @unchecked Sendable {
    /// The LV's mapping onto the PV.
    let volume: LogicalVolumeStore
    /// The PV.
    let pv: any OutageReportingStore & ConcurrentReadStore

    /// The store of `volume`, whose PV is `pv`.
    init(volume: LogicalVolumeStore, pv: any OutageReportingStore & ConcurrentReadStore) {
        self.volume = volume
        self.pv = pv
    }

    /// The LV's size.
    var size: UInt64 { volume.size }
    /// An LV is a block device.
    var isBlockDevice: Bool { true }
    /// Reads through the LV's mapping.
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws { try volume.read(into: buffer, at: offset) }
    /// Writes through the LV's mapping.
    func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws { try volume.write(buffer, at: offset) }
    /// Refused, as for every LV store: LVs are resized through the VG.
    func resize(to size: UInt64) throws { try volume.resize(to: size) }
    /// SYNCHRONIZE CACHE on the LUN.
    func sync() throws { try volume.sync() }
    /// The PV's outage.
    var outage: (seconds: Double, waiting: Int)? { pv.outage }
    /// The PV's held operations.
    var operationsHeld: UInt64 { pv.operationsHeld }
    /// The PV's paths.
    var paths: (active: Int, total: Int)? { pv.paths }
}

/// Reads and writes of the LV start on the PV's pipeline when it has one (an iSCSI LUN), one
/// request per piece of the LV's mapping they touch, ended together.
extension RemoteVolumeStore: AsyncBlockStore {
    /// Whether the PV starts requests with no thread waiting.
    var startsAsynchronously: Bool { (pv as? any AsyncBlockStore)?.startsAsynchronously ?? false }

    /// Starts a read through the LV's mapping.
    func startRead(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64, completion: @escaping @Sendable (Error?) -> Void) {
        let b = TransferredBuffer(buffer)
        start(b, at: offset, writing: false, blocking: { try self.read(into: b.bytes, at: offset) }, completion: completion) { pv, part, at, done in
            pv.startRead(into: part, at: at, completion: done)
        }
    }

    /// Starts a write through the LV's mapping.
    func startWrite(_ buffer: UnsafeRawBufferPointer, at offset: UInt64, completion: @escaping @Sendable (Error?) -> Void) {
        let b = TransferredBuffer(buffer)
        start(b, at: offset, writing: true, blocking: { try self.write(UnsafeRawBufferPointer(b.bytes), at: offset) },
              completion: completion) { pv, part, at, done in
            pv.startWrite(UnsafeRawBufferPointer(part), at: at, completion: done)
        }
    }

    /// Starts `each` for every piece of the LV's mapping that `buffer` at `offset` touches, ended
    /// together; `blocking` on a thread of its own when the PV starts nothing asynchronously or
    /// the request is out of the LV (its error).
    private func start(_ buffer: TransferredBuffer, at offset: UInt64, writing: Bool, blocking: @escaping @Sendable () throws -> Void,
                       completion: @escaping @Sendable (Error?) -> Void,
                       _ each: (any AsyncBlockStore, UnsafeMutableRawBufferPointer, UInt64, @escaping @Sendable (Error?) -> Void) -> Void) {
        let count = buffer.bytes.count
        guard let pv = pv as? any AsyncBlockStore, !(writing && volume.readOnly), offset <= volume.size,
              UInt64(count) <= volume.size - offset else { return runDetached(blocking, completion: completion) }
        let pieces = volume.pieces(at: offset, count: count)
        let countdown = PartCountdown(parts: pieces.count, completion: completion)
        for (pvOffset, range) in pieces {
            each(pv, UnsafeMutableRawBufferPointer(rebasing: buffer.bytes[range]), pvOffset, countdown.end)
        }
    }
}
