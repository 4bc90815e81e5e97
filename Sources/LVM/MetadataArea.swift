import VHD

/// One metadata area of a PV on a store: its header and the circular buffer of text copies after it.
public struct MetadataArea: Equatable, Sendable {
    /// Where the area lies (from the PV header).
    public let area: DiskArea

    /// The area at `area`.
    public init(area: DiskArea) {
        self.area = area
    }

    /// Reads and validates the area's header.
    public func readHeader(from store: BlockStore) throws -> MDAHeader {
        guard area.offset <= store.size, area.size <= store.size - area.offset else {
            throw LVMError.invalidMetadataArea(offset: area.offset, reason: "area of \(area.size) bytes runs past the device (\(store.size) bytes)")
        }
        let b = try store.read(count: MDAHeader.size, at: area.offset)
        return try MDAHeader.decode(b, expectedStart: area.offset, expectedSize: area.size)
    }

    /// Writes `header` (one sector: the atomic switch of a commit).
    public func writeHeader(_ header: MDAHeader, to store: BlockStore) throws {
        try store.write(header.encode(), at: area.offset)
    }

    /// Checks that `loc` lies inside the circular buffer of an area of `areaSize` bytes.
    static func validate(_ loc: RawLocation, areaSize: UInt64, limit: Int) throws {
        let s = UInt64(MDAHeader.size)
        guard loc.offset >= s, loc.offset < areaSize else {
            throw LVMError.invalidMetadataLocation("offset \(loc.offset) outside the buffer [512, \(areaSize))")
        }
        guard loc.size >= 2, loc.size <= UInt64(max(limit, 0)) + s, loc.size <= areaSize - s,
              loc.size <= UInt64(ConfigParser.maxTextSize) else {
            throw LVMError.invalidMetadataLocation("size \(loc.size) is not possible in an area of \(areaSize) bytes")
        }
    }

    /// Reads the text at `loc` (wrapping), checks its crc and terminator; returns the bytes before the NUL.
    public func readText(at loc: RawLocation, header: MDAHeader, from store: BlockStore) throws -> [UInt8] {
        try MetadataArea.validate(loc, areaSize: header.areaSize, limit: header.maxTextSize)
        let n = Int(loc.size)
        var text = [UInt8](repeating: 0, count: n)
        let first = Int(min(loc.size, header.areaSize - loc.offset))
        try text.withUnsafeMutableBytes { buf in
            try store.read(into: UnsafeMutableRawBufferPointer(rebasing: buf[0..<first]), at: area.offset + loc.offset)
            if first < n {
                try store.read(into: UnsafeMutableRawBufferPointer(rebasing: buf[first..<n]), at: area.offset + UInt64(MDAHeader.size))
            }
        }
        let crc = LVMChecksum.compute(text)
        guard crc == loc.checksum else { throw LVMError.invalidMetadataLocation("text crc \(loc.checksum) != computed \(crc)") }
        guard let nul = text.firstIndex(of: 0) else { throw LVMError.invalidMetadataLocation("text has no NUL terminator") }
        return Array(text[..<nul])
    }

    /// Writes `text` (NUL included) at relative `offset`, wrapping at the end and zero-padding the
    /// last write to a sector boundary; returns its location.
    public func writeText(_ text: [UInt8], at offset: UInt64, header: MDAHeader, to store: BlockStore) throws -> RawLocation {
        guard text.count <= header.maxTextSize else { throw LVMError.metadataTooLarge(size: text.count, limit: header.maxTextSize) }
        let s = MDAHeader.size
        let first = Int(min(UInt64(text.count), header.areaSize - offset))
        func padded(_ part: ArraySlice<UInt8>, room: Int) -> [UInt8] {
            let want = min((part.count + s - 1) / s * s, room)
            return Array(part) + [UInt8](repeating: 0, count: max(want - part.count, 0))
        }
        try store.write(padded(text[0..<first], room: Int(header.areaSize - offset)), at: area.offset + offset)
        if first < text.count {
            try store.write(padded(text[first...], room: Int(header.areaSize) - s), at: area.offset + UInt64(s))
        }
        return RawLocation(offset: offset, size: UInt64(text.count), checksum: LVMChecksum.compute(text))
    }
}
