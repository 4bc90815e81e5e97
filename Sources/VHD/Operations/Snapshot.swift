/// Differencing children over a parent, as `vhd-util snapshot` makes them.
public enum Snapshot {
    /// What to make.
    public struct Options: Sendable {
        /// The parent is a raw file, not a VHD (`-m`).
        public var rawParent = false
        /// Link to the given parent even if it is an empty differencing disk (`-e`).
        public var linkEmptyParent = false
        /// BAT capacity in bytes for fast resize (`-S`), 0 for just the size.
        public var fastResizeLimit: UInt64 = 0
        /// Refuse when the new chain would be deeper than this (`-l`), 0 for no limit.
        public var depthLimit = 0
        /// Virtual size of the child; 0 for the parent's (never smaller than the parent's).
        public var size: UInt64 = 0
        /// Defaults: VHD parent, empty parents skipped, no preallocation.
        public init() {}
    }

    /// The result: the child's uuid and the parent it actually links to.
    public struct Result: Sendable {
        /// The new image's uuid.
        public var uuid: VHDUUID
        /// The parent path written in the locators (an ancestor when empty parents were skipped).
        public var parentPath: String
        /// Depth of the new chain, when a depth limit asked for it to be counted.
        public var depth: Int?
    }

    /// Creates `child` as a differencing disk over `parent`.
    @discardableResult
    public static func create(child: String, parent: String, provider: any StoreProvider,
                              options: Options = Options(), uuid: VHDUUID = .random()) throws -> Result {
        guard !provider.exists(child) else { throw VHDError.io(path: child, operation: "create", errno: 17) }
        var target = parent
        var parentUUID = VHDUUID.null
        var parentSize: UInt64
        var depth: Int? = nil
        var keyhashSource: BatmapHeader? = nil
        if options.rawParent {
            let raw = try provider.open(parent, writable: false)
            // blktap keeps a raw parent's size; one that is not whole sectors is rounded up to
            // 2 MiB like any requested size, so every sector of the child can be written.
            parentSize = raw.size > 0 && raw.size % 512 == 0 ? raw.size : try Create.validatedSize(max(raw.size, 1))
        } else {
            // Only an empty differencing parent is skipped, so only then is its BAT needed.
            var image = try VHDImage(store: try provider.open(parent, writable: false), path: parent, writable: false,
                                     loadBAT: false)
            if image.diskType == .differencing && !options.linkEmptyParent {
                image = try VHDImage(store: image.store, path: parent, writable: false)
            }
            let givenSize = image.virtualSize
            if !options.linkEmptyParent {
                // An empty differencing parent adds nothing: link to the first ancestor with data.
                var seen: Set<String> = [provider.canonical(parent)]
                while image.diskType == .differencing && image.allocatedBlockCount == 0 && !image.parentUUID.isNull {
                    let up = try ParentResolver.resolve(image, provider: provider)
                    guard seen.insert(provider.canonical(up)).inserted else { throw VHDError.chainCycle(path: up) }
                    image = try VHDImage(store: try provider.open(up, writable: false), path: up, writable: false,
                                         loadBAT: false)
                    if image.diskType == .differencing { image = try VHDImage(store: image.store, path: up, writable: false) }
                    target = up
                }
            }
            parentUUID = image.footer.uuid
            parentSize = max(givenSize, image.virtualSize)
            keyhashSource = image.batmapHeader
            if options.depthLimit > 0 {
                let d = try chainDepth(of: image, provider: provider, limit: options.depthLimit + 1) + 1
                guard d <= options.depthLimit else { throw VHDError.chainTooDeep(path: child, limit: options.depthLimit) }
                depth = d
            }
        }
        let size = max(parentSize, options.size > 0 ? try Create.validatedSize(options.size) : 0)
        guard size <= Footer.maxReadableSize, size > 0 else { throw VHDError.invalidArgument("parent size \(size) unusable") }
        let capacity = options.fastResizeLimit > 0 ? try Create.validatedCapacity(options.fastResizeLimit) : 0
        var layout = ImageLayout(type: .differencing, size: size, capacity: capacity, uuid: uuid)
        let childDir = provider.canonical(StorePath.directory(of: child))
        var rel = StorePath.relative(provider.canonical(target), from: childDir)
        if !rel.hasPrefix("../") { rel = "./" + rel }
        layout.link(parentUUID: parentUUID, parentTimestamp: VHDTime.fromUnix(provider.modificationTime(target) ?? 0),
                    relativePath: rel)
        if let keyhash = keyhashSource, keyhash.keyhashCookie != 0 {
            layout.batmap.keyhashCookie = keyhash.keyhashCookie
            layout.batmap.keyhashNonce = keyhash.keyhashNonce
            layout.batmap.keyhashHash = keyhash.keyhashHash
        }
        let bytes = layout.encoded()
        let store = try provider.create(child, size: UInt64(bytes.count))
        do {
            try store.write(bytes, at: 0)
            try ImageLayout.placeEndFooter(bytes, in: store)
        } catch {
            try? provider.remove(child)
            throw error
        }
        return Result(uuid: uuid, parentPath: target, depth: depth)
    }

    /// Number of VHDs from `image` down to the root (1 for a standalone image).
    public static func chainDepth(of image: VHDImage, provider: any StoreProvider, limit: Int = 64) throws -> Int {
        var depth = 1
        var current = image
        var seen: Set<String> = [provider.canonical(image.path)]
        while current.diskType == .differencing && !current.parentUUID.isNull {
            let up = try ParentResolver.resolve(current, provider: provider)
            guard seen.insert(provider.canonical(up)).inserted else { throw VHDError.chainCycle(path: up) }
            current = try VHDImage(store: try provider.open(up, writable: false), path: up, writable: false, loadBAT: false)
            depth += 1
            guard depth <= limit else { throw VHDError.chainTooDeep(path: image.path, limit: limit) }
        }
        return depth
    }
}
