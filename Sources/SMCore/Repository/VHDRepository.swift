import Foundation
import VHD

/// The VDIs of one SR as a tree of VHDs in a `VolumeContainer`, with the Python SM's model:
/// user-visible VDIs are leaves; snapshot and clone turn the current image into a hidden,
/// read-only base copy with a fresh uuid and give the VDI a new empty leaf over it. Written once
/// for every driver; every multi-step operation is journaled in the container and brought to a
/// consistent state by `recover()`.
public final class VHDRepository {
    /// Longest chain a snapshot may produce (fault 109 beyond).
    public static let maxChainDepth = 30

    /// Where the volumes live.
    public let container: any VolumeContainer

    /// A repository over `container`.
    public init(container: any VolumeContainer) { self.container = container }

    /// Whether journal `name` is the repository's own (a snapshot or a resize); the layers above
    /// (the collector) own and recover the others.
    public static func owns(journal name: String) -> Bool {
        name.hasPrefix(SnapshotJournal.prefix) || name.hasPrefix(resizeJournalPrefix) || name.hasPrefix(setSizeJournalPrefix)
    }

    /// The SR's CBT logs.
    public var cbtLogs: CBTLogs { CBTLogs(container: container) }

    /// Volume name of VDI `uuid` (the container's naming).
    public func volume(_ uuid: String) -> String { container.naming.volume(uuid) }

    /// The VDI uuid of the volume at engine path `path` (a resolved parent), nil for other volumes.
    func vdi(atPath path: String) -> String? { container.naming.vdi(ofVolume: StorePath.basename(path)) }

    /// Engine path of VDI `uuid`.
    public func path(_ uuid: String) -> String { container.path(of: volume(uuid)) }

    /// The VHD of VDI `uuid` opened through the container (read-only unless `writable`; without
    /// its BAT when only footer and header are wanted).
    public func image(_ uuid: String, writable: Bool = false, loadBAT: Bool = true) throws -> VHDImage {
        try VHDImage(store: try container.provider.open(path(uuid), writable: writable), path: path(uuid),
                     writable: writable, loadBAT: loadBAT)
    }

    // MARK: - Scan

    /// Every VDI of the SR from one scan of the container (headers only), parents resolved by
    /// footer uuid to the VDI uuid of the volume that holds it.
    public func scan() throws -> [String: VDIState] {
        var entries: [String: Scan.Entry] = [:]
        for name in try container.list() {
            guard let uuid = container.naming.vdi(ofVolume: name) else { continue }
            let e = Scan.entry(name: name, path: container.path(of: name), provider: container.provider)
            if let err = e.error { throw RepositoryError.corruptVolume(name, err) }
            entries[uuid] = e
        }
        var byFooter: [String: String] = [:]
        for (uuid, e) in entries { if let f = e.uuid { byFooter[f] = uuid } }
        var out: [String: VDIState] = [:]
        var hasChildren: Set<String> = []
        for (uuid, e) in entries {
            var parent: String? = nil
            if e.type == "differencing", let pu = e.parentUUID {
                parent = byFooter[pu] ?? e.parentName.flatMap { vdi(atPath: $0) }
            }
            if let p = parent { hasChildren.insert(p) }
            out[uuid] = VDIState(uuid: uuid, location: uuid, virtualSize: e.virtualSize ?? 0,
                                 physicalUtilisation: e.physicalSize ?? 0, parent: parent,
                                 hidden: e.hidden ?? false, readOnly: false)
        }
        for p in hasChildren where out[p] != nil { out[p]!.readOnly = true }
        for (uuid, s) in out where s.hidden { out[uuid]!.readOnly = true }
        return out
    }

    /// The state of one VDI.
    public func state(_ uuid: String) throws -> VDIState {
        guard VDIName.isUUID(uuid) else { throw RepositoryError.invalidName(uuid) }
        guard container.exists(volume(uuid)) else { throw RepositoryError.missing(uuid) }
        // Footer and header only: a VDI's state never needs its BAT (4 MiB at 2 TiB).
        let image = try image(uuid, loadBAT: false)
        var parent: String? = nil
        if image.diskType == .differencing, let pp = try? ParentResolver.resolve(image, provider: container.provider) {
            parent = vdi(atPath: pp)
        }
        return VDIState(uuid: uuid, location: uuid, virtualSize: image.virtualSize,
                        physicalUtilisation: try container.utilisation(of: volume(uuid)), parent: parent,
                        hidden: image.hidden, readOnly: image.hidden)
    }

    // MARK: - Create, delete, resize

    /// Creates an empty dynamic VHD for VDI `uuid` (size rounded up to 2 MiB, at most 2040 GiB).
    public func create(uuid: String, size: UInt64) throws -> VDIState {
        guard VDIName.isUUID(uuid) else { throw RepositoryError.invalidName(uuid) }
        guard !container.exists(volume(uuid)) else { throw RepositoryError.exists(uuid) }
        let rounded: UInt64
        do { rounded = try Create.validatedSize(max(size, 1)) } catch { throw RepositoryError.invalidSize(size) }
        let tmp = container.naming.temporary(uuid)
        if container.exists(tmp) { try container.remove(tmp) }
        do {
            try Create.dynamic(at: container.path(of: tmp), size: rounded, fastResizeLimit: container.fastResizeLimit,
                               provider: container.provider)
        } catch {
            // A refused write (a full SR) leaves nothing half-made behind.
            try? container.remove(tmp)
            throw error
        }
        FaultPoint.hit("create.before-rename")
        try container.rename(tmp, to: volume(uuid))
        try container.prepareForGrowth(volume(uuid), virtualSize: rounded)
        try container.sync()
        return try state(uuid)
    }

    /// Deletes leaf VDI `uuid` (a VDI with children is refused: those are base copies the
    /// collector removes when nothing needs them).
    public func delete(uuid: String) throws {
        let all = try scan()
        guard all[uuid] != nil else { throw RepositoryError.missing(uuid) }
        if all.values.contains(where: { $0.parent == uuid }) { throw RepositoryError.hasChildren(uuid) }
        try container.remove(volume(uuid))
        try container.sync()
    }

    /// Grows VDI `uuid` to `size` bytes, journaled: when the BAT must grow, Resize's metadata
    /// journal (`resize_<uuid>`); when it need not (a fast resize: the footer and its backup
    /// rewritten), an entry `setsize_<uuid>` holding the size, so that a crash between the two
    /// footers is settled by recovery (on the primary footer's size) rather than left with
    /// footers that differ.
    public func resize(uuid: String, size: UInt64) throws -> VDIState {
        let s = try state(uuid)
        guard size >= s.virtualSize else { throw RepositoryError.shrink(uuid) }
        guard size <= Footer.maxVirtualSize else { throw RepositoryError.invalidSize(size) }
        if size == s.virtualSize { return s }
        let fast = try Create.validatedSize(size) <= Resize.fastLimit(try image(uuid, loadBAT: false))
        let setSize = Self.setSizeJournalPrefix + uuid
        if fast { try container.writeJournal(setSize, Array(String(size).utf8)) }
        try container.prepareForGrowth(volume(uuid), virtualSize: size)
        try Resize.run(path: path(uuid), size: size, provider: container.provider, journal: resizeJournal(uuid))
        if fast { try container.removeJournal(setSize) }
        let after = try state(uuid)
        try cbtLogs.grow(uuid, toSize: after.virtualSize)
        return after
    }

    /// The journal of a resize of VDI `uuid` that grows its BAT: an entry `resize_<uuid>`.
    func resizeJournal(_ uuid: String) -> ContainerJournal { ContainerJournal(container, name: Self.resizeJournalPrefix + uuid) }

    /// Journal names of resizes.
    static let resizeJournalPrefix = "resize_"
    /// Journal names of fast resizes (the size in decimal).
    static let setSizeJournalPrefix = "setsize_"
    /// Resize journals of earlier releases: a file `.journal-<uuid>` beside the image.
    static let legacyResizeJournalPrefix = ".journal-"

    /// Makes a writable leaf able to grow to its virtual size (LVs inflate; files: nothing).
    /// Files grow on write: their leaves need nothing, and their VHDs are not even opened for it.
    public func prepareLeaf(_ uuid: String) throws {
        guard container.sizingPolicy == .inflateBeforeGrowth else { return }
        try container.prepareForGrowth(volume(uuid), virtualSize: try image(uuid, loadBAT: false).virtualSize)
    }

    // MARK: - Snapshot and clone

    /// The outcome of a snapshot or clone.
    public struct SnapshotResult: Sendable, Equatable {
        /// The new leaf (the snapshot or clone), nil for a single snapshot.
        public var copy: VDIState?
        /// The new hidden base copy, nil when the VDI had nothing new since its last snapshot.
        public var base: VDIState?
        /// The VDI itself after the operation.
        public var vdi: VDIState
    }

    /// Snapshot (or clone) of VDI `uuid`: its data becomes the hidden base copy `baseUUID`, the VDI
    /// a new empty leaf over it, and `copyUUID` (when given) a second leaf. A VDI with nothing
    /// written since its last snapshot adds no empty base: the copy links to the current parent.
    /// With `linkCBT` (a snapshot, not a clone) the VDI's CBT log, if any, becomes the copy's and
    /// the VDI starts a new one after it (`CBTLogs.linkSnapshot`), within the same journal.
    public func snapshot(uuid: String, copyUUID: String?, baseUUID: String = VDIName.newUUID(),
                         linkCBT: Bool = false) throws -> SnapshotResult {
        let cbt = linkCBT && copyUUID != nil && cbtLogs.exists(uuid)
        let s = try state(uuid)
        guard !s.hidden else { throw RepositoryError.hidden(uuid) }
        if let c = copyUUID { guard VDIName.isUUID(c), !container.exists(volume(c)) else { throw RepositoryError.exists(c) } }
        let leaf = try image(uuid)
        let depth = try Snapshot.chainDepth(of: leaf, provider: container.provider, limit: Self.maxChainDepth + 2)
        guard depth < Self.maxChainDepth else { throw RepositoryError.chainTooLong(uuid) }
        if leaf.diskType == .differencing && leaf.allocatedBlockCount == 0, let parent = s.parent {
            guard let c = copyUUID else { return SnapshotResult(copy: nil, base: nil, vdi: s) }
            // Moving the logs is a second step: journaled, so that a crash between is finished or undone.
            let journal = cbt ? SnapshotJournal(vdi: uuid, base: parent, copy: c, cbt: true, emptyLeaf: true) : nil
            if let j = journal { try container.writeJournal(j.name, j.encoded()) }
            try makeChild(c, of: parent)
            try prepareLeaf(c)
            try container.sync()
            if let j = journal {
                try cbtLogs.linkSnapshot(vdi: uuid, snapshot: c, size: s.virtualSize)
                try container.removeJournal(j.name)
            }
            return SnapshotResult(copy: try state(c), base: nil, vdi: try state(uuid))
        }
        let journal = SnapshotJournal(vdi: uuid, base: baseUUID, copy: copyUUID, cbt: cbt)
        try container.writeJournal(journal.name, journal.encoded())
        FaultPoint.hit("snapshot.after-journal")
        try container.rename(volume(uuid), to: volume(baseUUID))
        FaultPoint.hit("snapshot.after-rename")
        try makeChild(uuid, of: baseUUID)
        FaultPoint.hit("snapshot.after-leaf")
        if let c = copyUUID { try makeChild(c, of: baseUUID) }
        FaultPoint.hit("snapshot.after-copy")
        try setHidden(baseUUID, true)
        try container.settleReadOnly(volume(baseUUID))
        try prepareLeaf(uuid)
        if let c = copyUUID { try prepareLeaf(c) }
        try container.sync()
        if cbt, let c = copyUUID { try cbtLogs.linkSnapshot(vdi: uuid, snapshot: c, size: s.virtualSize) }
        FaultPoint.hit("snapshot.before-commit")
        try container.removeJournal(journal.name)
        return SnapshotResult(copy: try copyUUID.map { try state($0) }, base: try state(baseUUID), vdi: try state(uuid))
    }

    /// Creates `uuid` as an empty differencing leaf over `parent`, atomically (temp + rename).
    func makeChild(_ uuid: String, of parent: String) throws {
        let tmp = container.naming.temporary(uuid)
        if container.exists(tmp) { try container.remove(tmp) }
        var o = Snapshot.Options()
        o.linkEmptyParent = true
        o.fastResizeLimit = container.fastResizeLimit
        try Snapshot.create(child: container.path(of: tmp), parent: path(parent), provider: container.provider, options: o)
        try container.rename(tmp, to: volume(uuid))
    }

    /// Sets the hidden flag of VDI `uuid`'s VHD.
    public func setHidden(_ uuid: String, _ hidden: Bool) throws {
        let image = try image(uuid, writable: true)
        if image.hidden != hidden { try image.updateFooter { $0.hidden = hidden ? 1 : 0 } }
        try image.store.sync()
    }

    // MARK: - Compose, reset

    /// `vdi_compose`: makes `child`'s VHD a child of `parent` and hides `parent`.
    public func compose(parent: String, child: String) throws {
        _ = try state(parent)
        _ = try state(child)
        try Relink.run(child: path(child), newParent: path(parent), provider: container.provider)
        try setHidden(parent, true)
        try container.settleReadOnly(volume(parent))
    }

    /// `vdi_epoch_begin` with on-boot reset: the leaf's writes are discarded (an empty leaf over
    /// the same parent, or an empty disk of the same size for a root).
    public func resetLeaf(_ uuid: String) throws {
        let s = try state(uuid)
        let tmp = container.naming.temporary(uuid)
        if container.exists(tmp) { try container.remove(tmp) }
        let image = try image(uuid)
        if let p = s.parent {
            var o = Snapshot.Options()
            o.linkEmptyParent = true
            o.fastResizeLimit = container.fastResizeLimit
            try Snapshot.create(child: container.path(of: tmp), parent: path(p), provider: container.provider, options: o,
                                uuid: image.footer.uuid)
        } else {
            try Create.dynamic(at: container.path(of: tmp), size: s.virtualSize, fastResizeLimit: container.fastResizeLimit,
                               provider: container.provider, uuid: image.footer.uuid)
        }
        try container.rename(tmp, to: volume(uuid))
        try prepareLeaf(uuid)
        try container.sync()
    }

    // MARK: - Recovery

    /// What recovery did.
    public struct Recovery: Sendable, Equatable {
        /// Operations rolled back, by journal name.
        public var rolledBack: [String] = []
        /// Operations completed, by journal name.
        public var completed: [String] = []
        /// Half-made files removed.
        public var removed: [String] = []
    }

    /// Finishes or rolls back every journaled operation of the repository's own and removes
    /// half-made volumes; run at attach and scan under the SR lock. Journals of other layers
    /// are left to them.
    @discardableResult
    public func recover() throws -> Recovery {
        var r = Recovery()
        for (name, bytes) in try container.journals() {
            if let j = SnapshotJournal(name: name, bytes: bytes) {
                if try finishSnapshot(j) { r.completed.append(name) } else { r.rolledBack.append(name) }
            } else if name.hasPrefix(Self.resizeJournalPrefix), let uuid = Optional(String(name.dropFirst(Self.resizeJournalPrefix.count))),
                      VDIName.isUUID(uuid) {
                if container.exists(volume(uuid)) {
                    try Resize.recover(path: path(uuid), journal: resizeJournal(uuid), provider: container.provider)
                    r.completed.append(name)
                } else { try container.removeJournal(name); r.removed.append(name) }
            } else if name.hasPrefix(Self.setSizeJournalPrefix), let uuid = Optional(String(name.dropFirst(Self.setSizeJournalPrefix.count))),
                      VDIName.isUUID(uuid) {
                // The primary footer decides (old size, or new once it was written); the backup
                // footer is rewritten from it, as vhd-util repair does. Then the entry goes.
                guard UInt64(String(decoding: bytes, as: UTF8.self)) != nil else {
                    throw RepositoryError.corruptVolume(name, "unreadable resize journal")
                }
                if container.exists(volume(uuid)) {
                    let image = try image(uuid, writable: true)
                    try image.updateFooter { _ in }
                    try image.store.sync()
                }
                try container.removeJournal(name)
                r.completed.append(name)
            } else if name.hasPrefix(SnapshotJournal.prefix) {
                throw RepositoryError.corruptVolume(name, "unreadable snapshot journal")
            }
        }
        for name in try container.list() {
            if container.naming.isTemporary(name) || cbtLogs.isTemporary(name) {
                try container.remove(name); r.removed.append(name)
            } else if name.hasPrefix(Self.legacyResizeJournalPrefix) {
                // A resize journal beside the image, as releases before container journals kept
                // it: an SR upgraded across a crash in a resize still finishes it.
                let uuid = String(name.dropFirst(Self.legacyResizeJournalPrefix.count))
                if VDIName.isUUID(uuid), container.exists(volume(uuid)) {
                    try Resize.recover(path: path(uuid), journal: StoreJournal(path: container.path(of: name), provider: container.provider),
                                       provider: container.provider)
                    r.completed.append(name)
                } else { try container.remove(name); r.removed.append(name) }
            }
        }
        try container.sync()
        return r
    }

    /// Completes an interrupted snapshot when both leaves are in place, else undoes it.
    /// Returns whether it was completed.
    func finishSnapshot(_ j: SnapshotJournal) throws -> Bool {
        for u in [j.vdi] + (j.copy.map { [$0] } ?? []) where container.exists(container.naming.temporary(u)) {
            try container.remove(container.naming.temporary(u))
        }
        if j.emptyLeaf == true, let c = j.copy {
            // Only the copy was made (a child of the existing parent) and the logs moved.
            let made = isChild(c, of: j.base)
            if made {
                try cbtLogs.linkSnapshot(vdi: j.vdi, snapshot: c, size: try image(j.vdi, loadBAT: false).virtualSize)
            } else {
                try cbtLogs.unlinkSnapshot(vdi: j.vdi, snapshot: c)
            }
            try container.sync()
            try container.removeJournal(j.name)
            return made
        }
        let baseExists = container.exists(volume(j.base))
        let leafOK = baseExists && isChild(j.vdi, of: j.base)
        let copyOK = j.copy.map { baseExists && isChild($0, of: j.base) } ?? true
        if leafOK && copyOK {
            try setHidden(j.base, true)
            try container.settleReadOnly(volume(j.base))
            // The new leaves take writes again (a datapath paused across the crash resumes on them).
            try prepareLeaf(j.vdi)
            if let c = j.copy { try prepareLeaf(c) }
            if j.cbt == true, let c = j.copy {
                try cbtLogs.linkSnapshot(vdi: j.vdi, snapshot: c, size: try image(j.vdi, loadBAT: false).virtualSize)
            }
        } else if baseExists {
            if j.cbt == true, let c = j.copy { try cbtLogs.unlinkSnapshot(vdi: j.vdi, snapshot: c) }
            // Undo: the base still holds every acknowledged byte of the VDI.
            if let c = j.copy, container.exists(volume(c)), isChild(c, of: j.base) { try container.remove(volume(c)) }
            try setHidden(j.base, false)
            try container.rename(volume(j.base), to: volume(j.vdi))
            try prepareLeaf(j.vdi)
        } else if let c = j.copy, container.exists(volume(c)), !container.exists(volume(j.vdi)) {
            throw RepositoryError.corruptVolume(volume(j.vdi), "snapshot journal without base or VDI")
        }
        try container.sync()
        try container.removeJournal(j.name)
        return leafOK && copyOK
    }

    func isChild(_ uuid: String, of parent: String) -> Bool {
        guard container.exists(volume(uuid)),
              let child = try? image(uuid, loadBAT: false),
              let p = try? image(parent, loadBAT: false) else { return false }
        return child.diskType == .differencing && child.parentUUID == p.footer.uuid
    }
}
