/// Bringing a damaged image back (`vhd-util repair`): footer from the backup copy (or the
/// primary), written at the end of data and at 0; batmap rebuilt from the bitmaps; an
/// interrupted journaled resize finished.
public enum Repair {
    /// What repair did.
    public struct Result: Sendable, Equatable {
        /// Which footer copy was used.
        public var footerSource: FooterSource
        /// Whether the footers were rewritten.
        public var footersRewritten: Bool
        /// Batmap bits fixed (1 for a bad checksum alone).
        public var batmapBitsFixed: Int
        /// Whether a resize journal was replayed.
        public var resizeJournalReplayed: Bool
    }

    /// Repairs the image at `path`.
    @discardableResult
    public static func run(path: String, provider: any StoreProvider, useBackupFooter: Bool = false,
                           resizeJournal: String? = nil) throws -> Result {
        let replayed = try Resize.recover(path: path, journal: resizeJournal.map { StoreJournal(path: $0, provider: provider) },
                                          provider: provider)
        let store = try provider.open(path, writable: true)
        let image = try VHDImage(store: store, path: path, writable: true, allowDisabled: true, repairing: true,
                                 preferBackupFooter: useBackupFooter)
        let source = image.footerSource
        var fixed = 0
        if image.batmapHeader != nil { fixed = try image.rebuildBatmap() }
        var rewrite = source != .primary || useBackupFooter || image.footer.disabled
        if image.diskType != .fixed {
            if case let .success(b) = Footer.decode(try store.read(count: 512, at: 0)) {
                if b != image.footer { rewrite = true }
            } else { rewrite = true }
            let primary = Footer.decode(try store.read(count: 512, at: store.size - 512))
            if case .failure = primary { rewrite = true }
        }
        if rewrite || image.footer.uuid.isNull {
            try image.updateFooter {
                $0.disabled = false
                if $0.uuid.isNull { $0.uuid = .random() }
            }
        }
        try store.sync()
        return Result(footerSource: source, footersRewritten: rewrite, batmapBitsFixed: fixed, resizeJournalReplayed: replayed)
    }
}
