/// The 512-byte header at the start of a metadata area: magic, version, position, size and the
/// committed (slot 0) and precommitted (slot 1) text locations.
public struct MDAHeader: Equatable, Sendable {
    /// Size of the header on disk.
    public static let size = 512
    /// The format magic `" LVM2 x[5A%r0N*>"`.
    public static let magic: [UInt8] = Array(" LVM2 x[5A%r0N*>".utf8)
    /// The only version there is.
    public static let version: UInt32 = 1

    /// Absolute byte offset of this header (equals the PV header's mda offset).
    public var start: UInt64
    /// Size of the whole area in bytes, header included.
    public var areaSize: UInt64
    /// The committed metadata.
    public var committed: RawLocation
    /// The precommitted metadata (normally empty).
    public var precommitted: RawLocation

    /// A header for the area at `start` of `areaSize` bytes.
    public init(start: UInt64, areaSize: UInt64, committed: RawLocation = .none, precommitted: RawLocation = .none) {
        self.start = start
        self.areaSize = areaSize
        self.committed = committed
        self.precommitted = precommitted
    }

    /// The 512 bytes on disk, checksum included.
    public func encode() -> [UInt8] {
        var b = [UInt8](repeating: 0, count: MDAHeader.size)
        b.put(MDAHeader.magic, at: 4)
        b.setLE32(MDAHeader.version, at: 20)
        b.setLE64(start, at: 24)
        b.setLE64(areaSize, at: 32)
        for (i, loc) in [committed, precommitted].enumerated() {
            let o = 40 + 24 * i
            b.setLE64(loc.offset, at: o); b.setLE64(loc.size, at: o + 8)
            b.setLE32(loc.checksum, at: o + 16); b.setLE32(loc.flags, at: o + 20)
        }
        b.setLE32(LVMChecksum.compute(b, 4..<MDAHeader.size), at: 0)
        return b
    }

    /// Decodes and validates a header read at `expectedStart` for an area of `expectedSize` bytes.
    public static func decode(_ b: [UInt8], expectedStart: UInt64, expectedSize: UInt64) throws -> MDAHeader {
        func bad(_ r: String) -> LVMError { .invalidMetadataArea(offset: expectedStart, reason: r) }
        guard b.count == size else { throw bad("header is \(b.count) bytes") }
        let crc = LVMChecksum.compute(b, 4..<size)
        guard crc == b.le32(0) else { throw bad("header crc \(b.le32(0)) != computed \(crc)") }
        guard Array(b[4..<20]) == magic else { throw bad("bad magic") }
        guard b.le32(20) == version else { throw bad("version \(b.le32(20))") }
        guard b.le64(24) == expectedStart else { throw bad("start field \(b.le64(24))") }
        let areaSize = b.le64(32)
        guard areaSize == expectedSize || expectedSize == 0 else { throw bad("size field \(areaSize), PV header says \(expectedSize)") }
        guard areaSize >= 2 * UInt64(size) else { throw bad("area of \(areaSize) bytes is too small") }
        func slot(_ i: Int) -> RawLocation {
            let o = 40 + 24 * i
            return RawLocation(offset: b.le64(o), size: b.le64(o + 8), checksum: b.le32(o + 16), flags: b.le32(o + 20))
        }
        return MDAHeader(start: expectedStart, areaSize: areaSize, committed: slot(0), precommitted: slot(1))
    }

    /// The largest text (NUL included) the area holds while keeping the previous copy intact.
    public var maxTextSize: Int { Int((areaSize - UInt64(MDAHeader.size)) / 2) - MDAHeader.size }

    /// Where the next copy goes after the committed one (relative offset, lvm2's rule).
    public var nextOffset: UInt64 {
        let s = UInt64(MDAHeader.size)
        guard !committed.isEmpty else { return s }
        let o = committed.offset, n = committed.size
        let oldLast = o + n > areaSize ? (o + n - areaSize) + s - 1 : o + n - 1
        if areaSize - oldLast < s { return s }
        let next = (oldLast + 1 + s - 1) / s * s
        return next > areaSize - s ? s : next
    }
}
