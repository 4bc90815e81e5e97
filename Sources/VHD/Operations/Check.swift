/// Consistency check of an image and optionally its ancestors: everything `vhd-util check`
/// verifies, plus overlapping blocks, blocks past the end and bitmap/batmap agreement.
public enum Check {
    /// What to skip or add.
    public struct Options: Sendable {
        /// Tolerate a missing or damaged primary footer (`-i`).
        public var ignoreMissingPrimaryFooter = false
        /// Do not compare the parent's uuid (`-I`).
        public var ignoreParentUUID = false
        /// Do not check timestamps against the clock (`-t`).
        public var ignoreTimestamps = false
        /// Check every ancestor too (`-p`).
        public var parents = false
        /// Skip the block overlap check (`-B`).
        public var skipOverlap = false
        /// Defaults: everything checked, this image only.
        public init() {}
    }

    /// The verdict for one image.
    public struct Report: Sendable, Equatable {
        /// The image.
        public var path: String
        /// Problems found, in the order checked; empty when valid.
        public var problems: [String]
        /// Whether the image passed.
        public var valid: Bool { problems.isEmpty }
    }

    /// Checks `path` (and its ancestors with `parents`); one report per image, leaf first.
    public static func run(path: String, provider: any StoreProvider, options: Options = Options()) -> [Report] {
        var reports: [Report] = []
        var current: String? = path
        var seen: Set<String> = []
        while let p = current {
            guard seen.insert(provider.canonical(p)).inserted else {
                reports.append(Report(path: p, problems: ["parent locators form a cycle"])); break
            }
            let (report, parent) = checkOne(p, provider: provider, options: options)
            reports.append(report)
            current = options.parents && report.valid ? parent : nil
        }
        return reports
    }

    static func checkOne(_ path: String, provider: any StoreProvider, options: Options) -> (Report, String?) {
        var problems: [String] = []
        var parentPath: String? = nil
        do {
            let store = try provider.open(path, writable: false)
            try checkFooters(store, options: options, problems: &problems)
            let image: VHDImage
            do {
                image = try VHDImage(store: store, path: path, writable: false)
            } catch let e as VHDError {
                // A footer problem was already named by checkFooters.
                if case .invalidFooter = e, !problems.isEmpty {} else { problems.append(e.reason) }
                return (Report(path: path, problems: problems), nil)
            }
            checkFooterFields(image.footer, options: options, problems: &problems)
            if image.diskType != .fixed {
                checkHeader(image, problems: &problems)
                if !options.skipOverlap { checkOverlaps(image, problems: &problems) }
                try checkBatmap(image, problems: &problems)
                if image.diskType == .differencing {
                    parentPath = checkParent(image, provider: provider, options: options, problems: &problems)
                }
            }
        } catch let e as VHDError {
            problems.append(e.reason)
        } catch {
            problems.append("\(error)")
        }
        return (Report(path: path, problems: problems), parentPath)
    }

    static func checkFooters(_ store: any BlockStore, options: Options, problems: inout [String]) throws {
        guard store.size >= 512 else { problems.append("file too small to hold a footer"); return }
        let primary = Footer.decode(try store.read(count: 512, at: store.size - 512))
        var primaryFooter: Footer? = nil
        switch primary {
        case let .success(f): primaryFooter = f
        case let .failure(p):
            if store.size % 512 == 511, case let .success(f) = Footer.decode(try store.read(count: 511, at: store.size - 511)) {
                primaryFooter = f
            } else if !options.ignoreMissingPrimaryFooter {
                problems.append("primary footer invalid: \(p)")
            }
        }
        if let f = primaryFooter, f.diskType == .fixed { return }
        switch Footer.decode(try store.read(count: 512, at: 0)) {
        case let .success(b):
            if let f = primaryFooter, f != b { problems.append("primary and backup footers differ") }
        case let .failure(p):
            problems.append("backup footer invalid: \(p)")
        }
    }

    static func checkFooterFields(_ f: Footer, options: Options, problems: inout [String]) {
        if f.features & 0x2 == 0 || f.features & ~UInt32(0x3) != 0 { problems.append("invalid features 0x\(String(f.features, radix: 16))") }
        if f.formatVersion != 0x0001_0000 { problems.append("invalid file format version") }
        if f.diskType == .fixed && f.dataOffset != UInt64.max { problems.append("invalid data offset for a fixed disk") }
        if !options.ignoreTimestamps && VHDTime.toUnix(f.timestamp) > VHDTime.toUnix(VHDTime.now()) + 3600 {
            problems.append("creation time in the future")
        }
        if f.isTap && f.creatorVersion > Footer.tapVersion { problems.append("unknown tap creator version \(f.creatorVersionText)") }
        if Geometry.forSize(f.currentSize).packed < f.geometry.packed { problems.append("geometry too large") }
        if f.savedState > 1 { problems.append("invalid saved state \(f.savedState)") }
        if f.hidden > 1 { problems.append("invalid hidden flag \(f.hidden)") }
        if !f.reservedZero { problems.append("footer reserved bytes not zero") }
        if f.uuid.isNull { problems.append("null uuid") }
        if f.disabled { problems.append("disabled by an unfinished resize") }
    }

    static func checkHeader(_ image: VHDImage, problems: inout [String]) {
        guard let h = image.header else { return }
        if h.dataOffset != UInt64.max { problems.append("header data offset is not all ones") }
        if h.reserved1 != 0 || !h.reservedZero { problems.append("header reserved fields not zero") }
        if image.diskType != .differencing {
            if !h.parentUUID.isNull || !h.parentName.isEmpty || h.locators.contains(where: { $0.rawCode != 0 }) {
                problems.append("parent fields set on a disk without parent")
            }
        }
    }

    static func checkOverlaps(_ image: VHDImage, problems: inout [String]) {
        let span = UInt64(image.bitmapBytes + image.blockSize)
        var blocks: [(UInt32, Int)] = []
        for b in 0..<image.maxTableEntries where image.entry(b) != VHDImage.unused { blocks.append((image.entry(b), b)) }
        blocks.sort { $0.0 < $1.0 }
        for i in 1..<max(1, blocks.count) where UInt64(blocks[i].0 - blocks[i - 1].0) * 512 < span {
            problems.append("blocks \(blocks[i - 1].1) and \(blocks[i].1) overlap")
        }
    }

    static func checkBatmap(_ image: VHDImage, problems: inout [String]) throws {
        guard image.footer.isTap, image.footer.creatorVersion >= 0x0001_0002 else { return }
        guard image.batmapHeader != nil else { problems.append("batmap missing"); return }
        guard image.batmapValid else { problems.append("batmap invalid (checksum or size)"); return }
        for b in 0..<image.blockCount where image.batmapSaysFull(b) {
            if image.entry(b) == VHDImage.unused {
                problems.append("batmap marks unallocated block \(b) full")
            } else if !SectorBitmap.isFull(try image.bitmap(b), count: image.sectorsPerBlock) {
                problems.append("batmap marks block \(b) full but its bitmap is not")
            }
        }
    }

    static func checkParent(_ image: VHDImage, provider: any StoreProvider, options: Options,
                            problems: inout [String]) -> String? {
        guard let h = image.header else { return nil }
        var codes: Set<UInt32> = []
        for (i, l) in h.locators.enumerated() where l.rawCode != 0 {
            if l.code == nil { problems.append("locator \(i) has an invalid code") }
            if !codes.insert(l.rawCode).inserted { problems.append("locator \(i) duplicates code \(l.code?.name ?? "?")") }
        }
        do {
            for (_, p) in try ParentResolver.locatorPaths(of: image) where StorePath.basename(p) != h.parentName {
                problems.append("locator \(p) does not match parent name \(h.parentName)")
            }
            let parent = try ParentResolver.resolve(image, provider: provider)
            if !h.parentUUID.isNull && !options.ignoreParentUUID {
                let p = try VHDImage(store: try provider.open(parent, writable: false), path: parent, writable: false, loadBAT: false)
                if p.footer.uuid != h.parentUUID { problems.append("invalid parent \(parent): invalid parent uuid") }
                if p.virtualSize > image.virtualSize { problems.append("parent \(parent) is larger than the child") }
            }
            return h.parentUUID.isNull ? nil : parent
        } catch let e as VHDError {
            problems.append(e.reason)
            return nil
        } catch {
            problems.append("\(error)")
            return nil
        }
    }
}

extension VHDError {
    /// The description without the leading path.
    var reason: String {
        let d = description
        if let r = d.firstRange(of: ": ") { return String(d[r.upperBound...]) }
        return d
    }
}
