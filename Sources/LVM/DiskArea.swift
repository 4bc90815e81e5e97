/// A region of the device named by the PV header: `offset` and `size` in bytes (lvm2's `disk_locn`).
public struct DiskArea: Equatable, Hashable, Sendable {
    /// Byte offset from the start of the device.
    public var offset: UInt64
    /// Size in bytes; 0 for a data area means "to the end of the device".
    public var size: UInt64

    /// An area at `offset` of `size` bytes.
    public init(offset: UInt64, size: UInt64) {
        self.offset = offset
        self.size = size
    }
}
