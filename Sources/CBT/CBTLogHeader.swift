import Foundation

/// The 48-byte header at the start of a CBT log, laid out as blktap's `cbt-util` reads and writes
/// it (`struct cbt_log_metadata` on x86-64): the parent log's uuid (16 bytes, RFC 4122 byte
/// order), the child log's uuid (16), the consistency flag (a little-endian `int`), 4 bytes of
/// alignment padding, the disk's virtual size in bytes (little-endian `uint64_t`). The bitmap
/// follows at byte 48. A null uuid (all zeros) means "no parent" / "no child".
public struct CBTLogHeader: Sendable, Equatable {
    /// Bytes of the header; the bitmap starts here.
    public static let byteCount = 48
    /// The text of the null uuid (no link).
    public static let nullUUID = "00000000-0000-0000-0000-000000000000"

    /// The log this one continues (the previous snapshot's), nil for none.
    public var parent: String?
    /// The log that continues this one (the next snapshot's or the VDI's own), nil for none.
    public var child: String?
    /// The consistency flag as stored (0: the bitmap may miss writes; tapdisk stores 1 when clean).
    public var consistencyFlag: Int32
    /// Virtual size of the disk the bitmap covers, in bytes.
    public var size: UInt64
    /// The 4 padding bytes after the flag, kept as read so that a rewrite changes only what it means to.
    public var padding: UInt32

    /// A header for a disk of `size` bytes.
    public init(parent: String? = nil, child: String? = nil, consistent: Bool, size: UInt64, padding: UInt32 = 0) {
        self.parent = parent
        self.child = child
        self.consistencyFlag = consistent ? 1 : 0
        self.size = size
        self.padding = padding
    }

    /// Whether the bitmap holds every write (the flag is non-zero).
    public var consistent: Bool {
        get { consistencyFlag != 0 }
        set { consistencyFlag = newValue ? 1 : 0 }
    }

    /// Bytes of the bitmap that follows.
    public var bitmapByteCount: Int { CBTBitmap.byteCount(forSize: size) }

    /// Decodes the first 48 bytes of `bytes`.
    public init(bytes: [UInt8]) throws {
        guard bytes.count >= Self.byteCount else { throw CBTFormatError.malformed("header of \(bytes.count) bytes, 48 wanted") }
        parent = Self.uuid(bytes[0..<16])
        child = Self.uuid(bytes[16..<32])
        consistencyFlag = Int32(bitPattern: Self.le32(bytes, 32))
        padding = Self.le32(bytes, 36)
        size = UInt64(Self.le32(bytes, 40)) | UInt64(Self.le32(bytes, 44)) << 32
    }

    /// The 48 bytes on disk.
    public func encoded() -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(Self.byteCount)
        out += Self.uuidBytes(parent)
        out += Self.uuidBytes(child)
        for v in [UInt32(bitPattern: consistencyFlag), padding, UInt32(truncatingIfNeeded: size), UInt32(truncatingIfNeeded: size >> 32)] {
            out += [UInt8(truncatingIfNeeded: v), UInt8(truncatingIfNeeded: v >> 8), UInt8(truncatingIfNeeded: v >> 16),
                    UInt8(truncatingIfNeeded: v >> 24)]
        }
        return out
    }

    /// The 16 bytes of uuid `text` (all zeros for nil or the null uuid).
    static func uuidBytes(_ text: String?) -> [UInt8] {
        guard let text, let u = UUID(uuidString: text) else { return [UInt8](repeating: 0, count: 16) }
        return withUnsafeBytes(of: u.uuid) { Array($0) }
    }

    /// Lower-case uuid text of 16 bytes, nil for the null uuid.
    static func uuid(_ bytes: ArraySlice<UInt8>) -> String? {
        guard bytes.contains(where: { $0 != 0 }) else { return nil }
        let b = Array(bytes)
        let hex = b.map { String(format: "%02x", $0) }.joined()
        let parts = [hex.prefix(8), hex.dropFirst(8).prefix(4), hex.dropFirst(12).prefix(4), hex.dropFirst(16).prefix(4), hex.dropFirst(20)]
        return parts.map(String.init).joined(separator: "-")
    }

    private static func le32(_ b: [UInt8], _ at: Int) -> UInt32 {
        UInt32(b[at]) | UInt32(b[at + 1]) << 8 | UInt32(b[at + 2]) << 16 | UInt32(b[at + 3]) << 24
    }
}
