/// What `vhd query` and `vhd info` report about one image.
public struct ImageInfo: Sendable, Codable, Equatable {
    /// Path of the image.
    public var path: String
    /// Footer uuid.
    public var uuid: String
    /// fixed, dynamic or differencing.
    public var type: String
    /// Virtual size in bytes.
    public var virtualSize: UInt64
    /// Bytes the image occupies (end of data plus footer; the device size for block devices).
    public var physicalSize: UInt64
    /// Hidden flag.
    public var hidden: Bool
    /// Batmap marker byte.
    public var marker: Int
    /// Parent uuid (nil without parent, null uuid for a raw parent).
    public var parentUUID: String?
    /// Parent path as resolved (nil without parent or when unresolvable).
    public var parentPath: String?
    /// Parent name from the header.
    public var parentName: String?
    /// Blocks with storage in this image.
    public var allocatedBlocks: Int
    /// Blocks covering the virtual size.
    public var blocks: Int
    /// Block size in bytes.
    public var blockSize: Int
    /// Largest size reachable by a fast resize.
    public var fastResizeLimit: UInt64
    /// VHDs from this image to the root.
    public var depth: Int?
    /// Creator application and version.
    public var creator: String
    /// Which footer copy was used.
    public var footerSource: String
    /// Whether a batmap is present and valid.
    public var batmapValid: Bool

    /// Gathers the facts of `path`; `withDepth` walks the chain (needs every parent).
    public static func of(path: String, provider: any StoreProvider, withDepth: Bool = false) throws -> ImageInfo {
        let image = try VHDImage(store: try provider.open(path, writable: false), path: path, writable: false)
        var parentPath: String? = nil
        if image.diskType == .differencing { parentPath = try? ParentResolver.resolve(image, provider: provider) }
        let physical = image.store.isBlockDevice ? image.store.size
            : (image.diskType == .fixed ? image.virtualSize + 512 : image.endOfData + 512)
        return ImageInfo(
            path: path, uuid: image.footer.uuid.description, type: image.diskType.description,
            virtualSize: image.virtualSize, physicalSize: physical, hidden: image.hidden, marker: Int(image.marker),
            parentUUID: image.diskType == .differencing ? image.parentUUID.description : nil,
            parentPath: parentPath, parentName: image.diskType == .differencing ? image.header?.parentName : nil,
            allocatedBlocks: image.allocatedBlockCount, blocks: image.blockCount, blockSize: image.blockSize,
            fastResizeLimit: Resize.fastLimit(image),
            depth: withDepth ? try Snapshot.chainDepth(of: image, provider: provider) : nil,
            creator: "\(image.footer.creatorName) \(image.footer.creatorVersionText)",
            footerSource: image.footerSource.rawValue, batmapValid: image.batmapValid)
    }
}
