/// The 512-byte hard disk footer, at the end of every VHD and (dynamic disks) copied at offset 0.
public struct Footer: Equatable, Sendable {
    /// Size of the structure on disk.
    public static let size = 512
    /// The cookie of a usable footer.
    public static let cookie: [UInt8] = Array("conectix".utf8)
    /// The cookie blktap writes while a journaled resize has the image disabled.
    public static let poisonCookie: [UInt8] = Array("v_poison".utf8)
    /// blktap's creator application.
    public static let tapCreator: [UInt8] = [0x74, 0x61, 0x70, 0x00]
    /// blktap's creator version (1.3).
    public static let tapVersion: UInt32 = 0x0001_0003
    /// Largest virtual size XenServer accepts (2040 GiB).
    public static let maxVirtualSize: UInt64 = 2040 << 30
    /// Absurd sizes are refused before anything is allocated for them (qemu's limit, in bytes).
    public static let maxReadableSize: UInt64 = 0xff00_0000 * 512

    /// Whether the cookie was `v_poison` (disabled by an unfinished journaled resize).
    public var disabled: Bool
    /// Feature flags (bit 1 always set).
    public var features: UInt32
    /// Format version, 0x00010000.
    public var formatVersion: UInt32
    /// Offset of the dynamic header; all ones for fixed disks.
    public var dataOffset: UInt64
    /// Creation time (VHD epoch).
    public var timestamp: UInt32
    /// Creator application (4 bytes).
    public var creatorApp: [UInt8]
    /// Creator version, major << 16 | minor.
    public var creatorVersion: UInt32
    /// Creator host OS.
    public var creatorHostOS: UInt32
    /// Size at creation.
    public var originalSize: UInt64
    /// Virtual size in bytes.
    public var currentSize: UInt64
    /// CHS geometry.
    public var geometry: Geometry
    /// Disk type.
    public var diskType: DiskType
    /// Checksum as stored.
    public var checksum: UInt32
    /// Image uuid.
    public var uuid: VHDUUID
    /// Saved-state flag.
    public var savedState: UInt8
    /// XenServer's hidden flag (byte 85).
    public var hidden: UInt8
    /// Whether reserved bytes 86..511 are all zero.
    public var reservedZero: Bool

    /// A footer as blktap writes it for a new image.
    public init(type: DiskType, size: UInt64, uuid: VHDUUID = .random(), timestamp: UInt32 = VHDTime.now()) {
        disabled = false
        features = 2
        formatVersion = 0x0001_0000
        dataOffset = type == .fixed ? UInt64.max : 512
        self.timestamp = timestamp
        creatorApp = Footer.tapCreator
        creatorVersion = Footer.tapVersion
        creatorHostOS = 0
        originalSize = size
        currentSize = size
        geometry = Geometry.forSize(size)
        diskType = type
        checksum = 0
        self.uuid = uuid
        savedState = 0
        hidden = 0
        reservedZero = true
    }

    /// Decodes and validates cookie, checksum (with blktap's old hidden-flag quirk) and type.
    public static func decode(_ b: [UInt8]) -> Result<Footer, FooterProblem> {
        guard b.count >= 511 else { return .failure(.tooShort) }
        var b = b
        if b.count == 511 { b.append(0) }
        let cookie = b.bytes(0, 8)
        guard cookie == Footer.cookie || cookie == Footer.poisonCookie else { return .failure(.cookie) }
        let stored = b.be32(64)
        let computed = vhdChecksum(b, skipping: 64..<68)
        if stored != computed {
            // Very old tap images carry hidden=1 with a checksum computed with hidden=0.
            var h = b; h[85] = 0
            guard b[85] != 0, stored == vhdChecksum(h, skipping: 64..<68) else { return .failure(.checksum) }
        }
        guard let type = DiskType(rawValue: b.be32(60)) else { return .failure(.diskType(b.be32(60))) }
        var f = Footer(type: type, size: b.be64(48), uuid: VHDUUID(bytes: b.bytes(68, 16)), timestamp: b.be32(24))
        f.disabled = cookie == Footer.poisonCookie
        f.features = b.be32(8)
        f.formatVersion = b.be32(12)
        f.dataOffset = b.be64(16)
        f.creatorApp = b.bytes(28, 4)
        f.creatorVersion = b.be32(32)
        f.creatorHostOS = b.be32(36)
        f.originalSize = b.be64(40)
        f.geometry = Geometry(cylinders: b.be16(56), heads: b[58], sectorsPerTrack: b[59])
        f.checksum = stored
        f.savedState = b[84]
        f.hidden = b[85]
        f.reservedZero = b.allZero(86..<512)
        return .success(f)
    }

    /// The 512 bytes with a fresh checksum.
    public func encoded() -> [UInt8] {
        var b = [UInt8](repeating: 0, count: 512)
        b.put(disabled ? Footer.poisonCookie : Footer.cookie, at: 0)
        b.setBE32(features, at: 8)
        b.setBE32(formatVersion, at: 12)
        b.setBE64(dataOffset, at: 16)
        b.setBE32(timestamp, at: 24)
        b.put(creatorApp, at: 28)
        b.setBE32(creatorVersion, at: 32)
        b.setBE32(creatorHostOS, at: 36)
        b.setBE64(originalSize, at: 40)
        b.setBE64(currentSize, at: 48)
        b.setBE16(geometry.cylinders, at: 56)
        b[58] = geometry.heads
        b[59] = geometry.sectorsPerTrack
        b.setBE32(diskType.rawValue, at: 60)
        b.put(uuid.bytes, at: 68)
        b[84] = savedState
        b[85] = hidden
        b.setBE32(vhdChecksum(b, skipping: 64..<68), at: 64)
        return b
    }

    /// The creator application as text (`tap`, `qemu`, ...).
    public var creatorName: String {
        String(decoding: creatorApp.prefix { $0 != 0 }, as: UTF8.self).trimmingSuffixSpaces()
    }

    /// Creator version as `major.minor`.
    public var creatorVersionText: String { "\(creatorVersion >> 16).\(creatorVersion & 0xffff)" }

    /// Whether blktap wrote this image (and so a batmap is implied from version 1.2).
    public var isTap: Bool { creatorApp == Footer.tapCreator }
}

/// Why a footer copy was refused.
public enum FooterProblem: Error, Equatable, Sendable, CustomStringConvertible {
    /// Fewer than 511 bytes.
    case tooShort
    /// Not `conectix`.
    case cookie
    /// Checksum mismatch.
    case checksum
    /// A disk type other than fixed, dynamic or differencing.
    case diskType(UInt32)

    /// The words `vhd-util check` uses.
    public var description: String {
        switch self {
        case .tooShort: "too short"
        case .cookie: "invalid cookie"
        case .checksum: "invalid checksum"
        case let .diskType(t): "invalid disk type \(t)"
        }
    }
}

extension String {
    func trimmingSuffixSpaces() -> String {
        var s = self
        while s.hasSuffix(" ") { s.removeLast() }
        return s
    }
}
