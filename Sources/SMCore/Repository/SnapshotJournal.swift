import Foundation

/// The journal entry of a snapshot or clone in progress: which VDI, which base copy uuid, which
/// second leaf. Stored as JSON under `snapshot_<vdi>`.
struct SnapshotJournal: Codable, Equatable {
    /// The VDI being snapshotted.
    var vdi: String
    /// The uuid its data moves to.
    var base: String
    /// The snapshot or clone leaf, nil for a single snapshot.
    var copy: String?
    /// Whether the VDI's CBT log moves to the copy (`CBTLogs.linkSnapshot`); absent in journals
    /// of earlier releases.
    var cbt: Bool?
    /// A snapshot of a leaf with nothing written since the last one: no base is made, the copy
    /// is a child of `base` (the existing parent) and only the CBT logs move.
    var emptyLeaf: Bool?

    /// Names of snapshot journals start with this.
    static let prefix = "snapshot_"

    /// The journal name.
    var name: String { Self.prefix + vdi }

    /// JSON bytes.
    func encoded() -> [UInt8] { Array(try! JSONEncoder().encode(self)) }

    /// Decodes an entry named `snapshot_*`; nil for other journals.
    init?(name: String, bytes: [UInt8]) {
        guard name.hasPrefix(Self.prefix), let j = try? JSONDecoder().decode(SnapshotJournal.self, from: Data(bytes)) else { return nil }
        self = j
    }

    /// A new entry.
    init(vdi: String, base: String, copy: String?, cbt: Bool = false, emptyLeaf: Bool = false) {
        self.vdi = vdi; self.base = base; self.copy = copy
        self.cbt = cbt ? true : nil
        self.emptyLeaf = emptyLeaf ? true : nil
    }
}
