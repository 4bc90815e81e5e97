/// The metadata of every VHD in a folder in one call, what an SR scan needs: two small reads
/// per file (the backup footer and header at 0, the primary footer at the end), no BAT.
public enum Scan {
    /// One image found by a scan.
    public struct Entry: Sendable, Codable, Equatable {
        /// File name within the folder.
        public var name: String
        /// Footer uuid.
        public var uuid: String?
        /// fixed, dynamic or differencing.
        public var type: String?
        /// Virtual size in bytes.
        public var virtualSize: UInt64?
        /// Size of the file or device in bytes.
        public var physicalSize: UInt64?
        /// Hidden flag.
        public var hidden: Bool?
        /// Parent uuid (differencing disks; null uuid for a raw parent).
        public var parentUUID: String?
        /// Parent file name from the header.
        public var parentName: String?
        /// Batmap marker (0 if none).
        public var marker: Int?
        /// Why the file could not be read, when it could not.
        public var error: String?
    }

    /// Scans `directory` for names ending in `suffix`.
    public static func run(directory: String, provider: any StoreProvider, suffix: String = ".vhd") throws -> [Entry] {
        try provider.list(directory).filter { $0.hasSuffix(suffix) }.map { name in
            entry(name: name, path: StorePath.join(directory, name), provider: provider)
        }
    }

    /// Reads one image's scan entry; failures are reported in `error`, not thrown.
    public static func entry(name: String, path: String, provider: any StoreProvider) -> Entry {
        var e = Entry(name: name)
        do {
            let store = try provider.open(path, writable: false)
            e.physicalSize = store.size
            guard store.size >= 512 else { throw VHDError.invalidFooter(path: path, reason: "file too small") }
            let head = try store.read(count: Int(min(store.size, 1536)), at: 0)
            var footer: Footer
            switch Footer.decode(try store.read(count: 512, at: store.size - 512)) {
            case let .success(f): footer = f
            case let .failure(p):
                guard head.count >= 512, case let .success(f) = Footer.decode(Array(head[0..<512])) else {
                    throw VHDError.invalidFooter(path: path, reason: p.description)
                }
                footer = f
            }
            e.uuid = footer.uuid.description
            e.type = footer.diskType.description
            e.virtualSize = footer.currentSize
            e.hidden = footer.hidden != 0
            if footer.diskType != .fixed {
                var h: DynamicHeader
                if footer.dataOffset == 512 && head.count == 1536 {
                    guard case let .success(v) = DynamicHeader.decode(Array(head[512..<1536])) else {
                        throw VHDError.invalidHeader(path: path, reason: "invalid header")
                    }
                    h = v
                } else {
                    let image = try VHDImage(store: store, path: path, writable: false, loadBAT: false)
                    h = image.header!
                }
                if footer.diskType == .differencing {
                    e.parentUUID = h.parentUUID.description
                    e.parentName = h.parentName
                }
                if footer.isTap, footer.creatorVersion >= 0x0001_0001, h.tableOffset <= store.size,
                   h.batBytes <= store.size - h.tableOffset {
                    let at = h.tableOffset + h.batBytes
                    if store.size - at >= 512, let bh = BatmapHeader.decode(try store.read(count: 512, at: at)) {
                        e.marker = Int(bh.marker)
                    }
                }
            }
            e.marker = e.marker ?? 0
        } catch let err as VHDError {
            e.error = err.reason
        } catch {
            e.error = "\(error)"
        }
        return e
    }
}
