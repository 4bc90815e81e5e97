import VHD

/// The bytes of one LV as a `BlockStore`: logical offsets mapped through the LV's segments onto
/// the PV's store. A fixed-size block device: resizing goes through the VG, never through here.
public final class LogicalVolumeStore: BlockStore {
    /// One contiguous piece: LV bytes `[lvOffset, lvOffset + length)` at PV byte `pvOffset`.
    public struct Extent: Equatable, Sendable {
        /// Offset inside the LV.
        public let lvOffset: UInt64
        /// Length in bytes.
        public let length: UInt64
        /// Offset on the PV store.
        public let pvOffset: UInt64
    }

    /// The PV's store.
    public let pv: BlockStore
    /// The LV's name (for errors).
    public let name: String
    /// The mapping, in LV order.
    public let extents: [Extent]
    /// LV size in bytes.
    public let size: UInt64
    /// Whether writes are refused (the LV's status lacks `WRITE`).
    public let readOnly: Bool

    /// Always a block device: its size is fixed.
    public var isBlockDevice: Bool { true }

    /// A store over LV `lv` of `vg`, whose segments must all lie on the PV `pvUUID` held by `pv`.
    public init(pv: BlockStore, pvUUID: LVMUUID, vg: VolumeGroup, lv: String) throws {
        try vg.validate()
        guard let l = vg.lv(lv) else { throw LVMError.lvNotFound(lv) }
        var out: [Extent] = []
        let eb = vg.extentBytes
        for seg in l.segments {
            guard let p = vg.pv(seg.pv), p.id == pvUUID else {
                throw LVMError.unsupported("LV \(lv) has extents on another PV (\(seg.pv))")
            }
            let pvOffset = (p.peStart + seg.pvExtent * vg.extentSize) * 512
            let length = seg.extentCount * eb
            guard pvOffset + length <= pv.size else {
                throw LVMError.invalidMetadata("LV \(lv) segment ends at \(pvOffset + length), past the device (\(pv.size))")
            }
            if let last = out.last, last.pvOffset + last.length == pvOffset {
                out[out.count - 1] = Extent(lvOffset: last.lvOffset, length: last.length + length, pvOffset: last.pvOffset)
            } else {
                out.append(Extent(lvOffset: seg.startExtent * eb, length: length, pvOffset: pvOffset))
            }
        }
        self.pv = pv
        name = lv
        extents = out
        size = l.extentCount * eb
        readOnly = l.isReadOnly
    }

    /// Index of the piece holding LV byte `offset` (binary search).
    private func piece(at offset: UInt64) -> Int {
        var lo = 0, hi = extents.count - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if extents[mid].lvOffset <= offset { lo = mid } else { hi = mid - 1 }
        }
        return lo
    }

    /// Where `[offset, offset + count)` lies on the PV: for each piece it touches, the PV offset
    /// and the range of the request's bytes (checked against the LV's size by the caller).
    public func pieces(at offset: UInt64, count: Int) -> [(pvOffset: UInt64, range: Range<Int>)] {
        var out: [(pvOffset: UInt64, range: Range<Int>)] = []
        forEachPiece(offset, count) { out.append(($0, $1)) }
        return out
    }

    /// Calls `body(pvOffset, range in the buffer)` for each piece `[offset, offset + count)` touches.
    private func forEachPiece(_ offset: UInt64, _ count: Int, _ body: (UInt64, Range<Int>) throws -> Void) rethrows {
        var done = 0
        var i = piece(at: offset)
        while done < count {
            let e = extents[i]
            let at = offset + UInt64(done)
            let inPiece = at - e.lvOffset
            let n = Int(min(UInt64(count - done), e.length - inPiece))
            try body(e.pvOffset + inPiece, done..<done + n)
            done += n
            i += 1
        }
    }

    /// Reads LV bytes at `offset`; throws `VHDError.shortRead` past the end of the LV.
    public func read(into buffer: UnsafeMutableRawBufferPointer, at offset: UInt64) throws {
        guard offset <= size, UInt64(buffer.count) <= size - offset else {
            throw VHDError.shortRead(path: "LV \(name)", offset: offset, count: buffer.count)
        }
        try forEachPiece(offset, buffer.count) { pvOffset, r in
            try pv.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[r]), at: pvOffset)
        }
    }

    /// Writes LV bytes at `offset`; throws `VHDError.noSpace` past the end, `LVMError.readOnlyLV` on a read-only LV.
    public func write(_ buffer: UnsafeRawBufferPointer, at offset: UInt64) throws {
        guard !readOnly else { throw LVMError.readOnlyLV(name) }
        guard offset <= size, UInt64(buffer.count) <= size - offset else {
            throw VHDError.noSpace(path: "LV \(name)", needed: offset + UInt64(buffer.count), available: size)
        }
        try forEachPiece(offset, buffer.count) { pvOffset, r in
            try pv.write(UnsafeRawBufferPointer(rebasing: buffer[r]), at: pvOffset)
        }
    }

    /// Refused: an LV is resized through its VG (`VolumeGroup.resizeLV` and a commit), then reopened.
    public func resize(to size: UInt64) throws {
        throw LVMError.unsupported("resizing LV \(name) through its store; resize it in the VG and reopen")
    }

    /// Syncs the PV store.
    public func sync() throws {
        try pv.sync()
    }
}
