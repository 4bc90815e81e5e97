/// The 1024-byte dynamic disk header of dynamic and differencing VHDs.
public struct DynamicHeader: Equatable, Sendable {
    /// Size on disk.
    public static let size = 1024
    /// The cookie.
    public static let cookie: [UInt8] = Array("cxsparse".utf8)
    /// The only block size XenServer uses.
    public static let defaultBlockSize: UInt32 = 2 << 20

    /// Unused data offset (must be all ones for blktap).
    public var dataOffset: UInt64
    /// Absolute offset of the BAT.
    public var tableOffset: UInt64
    /// Header version, 0x00010000.
    public var headerVersion: UInt32
    /// BAT capacity in entries.
    public var maxTableEntries: UInt32
    /// Block size in bytes.
    public var blockSize: UInt32
    /// Checksum as stored.
    public var checksum: UInt32
    /// The parent's footer uuid; null for a raw parent or none.
    public var parentUUID: VHDUUID
    /// Parent modification time (VHD epoch).
    public var parentTimestamp: UInt32
    /// Reserved field at 60.
    public var reserved1: UInt32
    /// Parent's name, UTF-16BE basename.
    public var parentName: String
    /// The eight parent locators.
    public var locators: [ParentLocator]
    /// Whether bytes 768..1023 are zero.
    public var reservedZero: Bool

    /// A header as blktap writes it for a new image.
    public init(tableOffset: UInt64 = 1536, maxTableEntries: UInt32, blockSize: UInt32 = DynamicHeader.defaultBlockSize) {
        dataOffset = UInt64.max
        self.tableOffset = tableOffset
        headerVersion = 0x0001_0000
        self.maxTableEntries = maxTableEntries
        self.blockSize = blockSize
        checksum = 0
        parentUUID = .null
        parentTimestamp = 0
        reserved1 = 0
        parentName = ""
        locators = Array(repeating: .empty, count: 8)
        reservedZero = true
    }

    /// Decodes and validates cookie, checksum and version.
    public static func decode(_ b: [UInt8]) -> Result<DynamicHeader, HeaderProblem> {
        guard b.count >= 1024 else { return .failure(.tooShort) }
        guard b.bytes(0, 8) == cookie else { return .failure(.cookie) }
        let stored = b.be32(36)
        guard stored == vhdChecksum(Array(b[0..<1024]), skipping: 36..<40) else { return .failure(.checksum) }
        var h = DynamicHeader(tableOffset: b.be64(16), maxTableEntries: b.be32(28), blockSize: b.be32(32))
        h.dataOffset = b.be64(8)
        h.headerVersion = b.be32(24)
        h.checksum = stored
        h.parentUUID = VHDUUID(bytes: b.bytes(40, 16))
        h.parentTimestamp = b.be32(56)
        h.reserved1 = b.be32(60)
        var units: [UInt16] = []
        for i in stride(from: 64, to: 576, by: 2) {
            let u = b.be16(i)
            if u == 0 { break }
            units.append(u)
        }
        h.parentName = String(decoding: units, as: UTF16.self)
        h.locators = (0..<8).map { ParentLocator.decode(b, at: 576 + 24 * $0) }
        h.reservedZero = b.allZero(768..<1024)
        return .success(h)
    }

    /// The 1024 bytes with a fresh checksum.
    public func encoded() -> [UInt8] {
        var b = [UInt8](repeating: 0, count: 1024)
        b.put(DynamicHeader.cookie, at: 0)
        b.setBE64(dataOffset, at: 8)
        b.setBE64(tableOffset, at: 16)
        b.setBE32(headerVersion, at: 24)
        b.setBE32(maxTableEntries, at: 28)
        b.setBE32(blockSize, at: 32)
        b.put(parentUUID.bytes, at: 40)
        b.setBE32(parentTimestamp, at: 56)
        b.setBE32(reserved1, at: 60)
        var o = 64
        for u in parentName.utf16.prefix(256) { b.setBE16(u, at: o); o += 2 }
        for (i, l) in locators.prefix(8).enumerated() { l.encode(into: &b, at: 576 + 24 * i) }
        b.setBE32(vhdChecksum(b, skipping: 36..<40), at: 36)
        return b
    }

    /// Sectors of sector bitmap in front of each block.
    public var bitmapSectors: Int { Int((UInt64(blockSize) / 512 / 8 + 511) / 512) }

    /// Bytes the BAT occupies on disk (padded to a sector).
    public var batBytes: UInt64 { roundUp(UInt64(maxTableEntries) * 4, to: 512) }
}

/// Why a dynamic header was refused.
public enum HeaderProblem: Error, Equatable, Sendable, CustomStringConvertible {
    /// Fewer than 1024 bytes.
    case tooShort
    /// Not `cxsparse`.
    case cookie
    /// Checksum mismatch.
    case checksum

    /// The words `vhd-util check` uses.
    public var description: String {
        switch self { case .tooShort: "too short"; case .cookie: "invalid cookie"; case .checksum: "invalid checksum" }
    }
}
