/// A dynamic or differencing VHD laid out to be written front to back in one pass (an export
/// stream whose length is known before its first byte): blktap's metadata region (footer copy,
/// header, BAT, batmap, parent locators) padded to 4 KiB, then the chosen blocks in ascending order, each as a
/// gap to keep its data 4 KiB-aligned, a full sector bitmap and the block's data, then the footer.
public struct VHDStreamLayout: Sendable {
    /// The parent a differencing stream names: its footer uuid, modification time and path
    /// relative to the stream's file (`./<name>.vhd`).
    public struct Parent: Sendable {
        /// The parent's footer uuid.
        public var uuid: VHDUUID
        /// The parent's modification time (VHD epoch).
        public var timestamp: UInt32
        /// The parent's path relative to the child's folder.
        public var relativePath: String

        /// A parent named `relativePath` with footer uuid `uuid`.
        public init(uuid: VHDUUID, timestamp: UInt32 = VHDTime.now(), relativePath: String) {
            self.uuid = uuid
            self.timestamp = timestamp
            self.relativePath = relativePath
        }
    }

    /// The virtual size in bytes.
    public let virtualSize: UInt64
    /// Bytes per block.
    public let blockSize: Int
    /// The blocks the stream holds, ascending.
    public let blocks: [Int]
    /// Everything before the first block.
    public let prefix: [UInt8]
    /// What precedes each block's data: the alignment gap and a bitmap with every sector present.
    public let blockHead: [UInt8]
    /// The footer, last.
    public let footer: [UInt8]

    /// The layout of a VHD of `virtualSize` bytes holding `blocks` (indexes of 2 MiB blocks, any
    /// order, duplicates ignored), with footer uuid `uuid`: differencing over `parent` when
    /// given, else dynamic.
    public init(virtualSize: UInt64, blocks: [Int], uuid: VHDUUID = .random(), parent: Parent? = nil) throws(VHDError) {
        guard virtualSize > 0, virtualSize <= Footer.maxVirtualSize, virtualSize % 512 == 0 else {
            throw .invalidArgument("a VHD stream needs a virtual size of 512-byte sectors up to 2040 GiB, not \(virtualSize)")
        }
        var layout = ImageLayout(type: parent == nil ? .dynamic : .differencing, size: virtualSize, capacity: virtualSize, uuid: uuid)
        if let parent {
            layout.link(parentUUID: parent.uuid, parentTimestamp: parent.timestamp, relativePath: parent.relativePath)
        }
        let sorted = Array(Set(blocks)).sorted()
        let bs = Int(layout.header.blockSize)
        guard sorted.allSatisfy({ $0 >= 0 && UInt64($0) * UInt64(bs) < virtualSize }) else {
            throw .invalidArgument("a VHD stream block lies outside its \(virtualSize) bytes")
        }
        let bitmapSectors = UInt64(layout.header.bitmapSectors)
        // The metadata is padded to 4 KiB; each block's gap then keeps every block's data 4 KiB-aligned.
        let start = (layout.metadataEnd + 4095) / 4096 * 8
        let gap = (8 - bitmapSectors % 8) % 8
        let stride = gap + bitmapSectors + UInt64(bs) / 512
        guard start + UInt64(sorted.count) * stride < UInt64(UInt32.max) else {
            throw .invalidArgument("a VHD stream of \(sorted.count) blocks is beyond the BAT's reach")
        }
        var metadata = layout.encoded()
        let footerBytes = Array(metadata.suffix(512))
        metadata.removeLast(512)
        metadata += [UInt8](repeating: 0, count: Int(start * 512) - metadata.count)
        let table = Int(layout.header.tableOffset)
        for (k, b) in sorted.enumerated() {
            metadata.setBE32(UInt32(start + UInt64(k) * stride + gap), at: table + b * 4)
        }
        self.virtualSize = virtualSize
        self.blockSize = bs
        self.blocks = sorted
        self.prefix = metadata
        self.blockHead = [UInt8](repeating: 0, count: Int(gap) * 512) + [UInt8](repeating: 0xff, count: Int(bitmapSectors) * 512)
        self.footer = footerBytes
    }

    /// The stream's length in bytes.
    public var length: UInt64 {
        UInt64(prefix.count) + UInt64(blocks.count) * UInt64(blockHead.count + blockSize) + UInt64(footer.count)
    }
}
