/// Where a metadata text copy lies in a metadata area (lvm2's `raw_locn`).
public struct RawLocation: Equatable, Hashable, Sendable {
    /// The flag of an area kept but holding no metadata (`pvchange --metadataignore`).
    public static let ignoredFlag: UInt32 = 1
    /// The empty slot.
    public static let none = RawLocation(offset: 0, size: 0, checksum: 0, flags: 0)

    /// Offset in bytes relative to the start of the metadata area.
    public var offset: UInt64
    /// Bytes of text including the terminating NUL.
    public var size: UInt64
    /// `LVMChecksum` of exactly `size` bytes of text.
    public var checksum: UInt32
    /// Flags (bit 0: ignored).
    public var flags: UInt32

    /// A location with all fields given.
    public init(offset: UInt64, size: UInt64, checksum: UInt32, flags: UInt32 = 0) {
        self.offset = offset
        self.size = size
        self.checksum = checksum
        self.flags = flags
    }

    /// Whether the slot is empty (no metadata).
    public var isEmpty: Bool { offset == 0 && size == 0 }
}
