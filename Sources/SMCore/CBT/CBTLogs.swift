import CBT
import VHD

/// The CBT logs of one SR, reached through its `VolumeContainer` (one log volume per VDI that
/// tracks changes, named by the container's naming): create, remove, link and unlink them as the
/// Python SM does with `cbt-util`, written once for every driver. Links are uuids of VDIs: a
/// log's parent is the snapshot taken before it, its child the log that continues it.
public struct CBTLogs {
    /// Where the logs live.
    public let container: any VolumeContainer

    /// The logs of `container`.
    public init(container: any VolumeContainer) { self.container = container }

    /// The volume of VDI `uuid`'s log.
    public func name(_ uuid: String) -> String { container.naming.cbtLog(uuid) }

    /// The volume a new log is written in before it takes its name.
    func temporary(_ uuid: String) -> String { name(uuid) + ".new" }

    /// Whether `volume` is a half-made log (left by a crash: recovery removes it).
    public func isTemporary(_ volume: String) -> Bool {
        volume.hasSuffix(".new") && container.naming.vdi(ofCBTLog: String(volume.dropLast(4))) != nil
    }

    /// Whether VDI `uuid` has a log (tracking is on).
    public func exists(_ uuid: String) -> Bool { container.exists(name(uuid)) }

    /// VDI `uuid`'s log.
    public func open(_ uuid: String, writable: Bool = false) throws -> CBTLog {
        guard exists(uuid) else { throw CBTError.noLog(uuid) }
        return CBTLog(store: try container.open(name(uuid), writable: writable))
    }

    /// The header of VDI `uuid`'s log.
    public func header(_ uuid: String) throws -> CBTLogHeader { try open(uuid).header() }

    /// Changes the header of VDI `uuid`'s log and forces it to disk.
    public func update(_ uuid: String, _ change: (inout CBTLogHeader) -> Void) throws {
        let log = try open(uuid, writable: true)
        var h = try log.header()
        let before = h
        change(&h)
        guard h != before else { return }
        try log.writeHeader(h)
        try log.sync()
    }

    /// VDIs with a log, by uuid.
    public func vdis() throws -> Set<String> {
        Set(try container.list().compactMap { container.naming.vdi(ofCBTLog: $0) })
    }

    /// Writes a new log for VDI `uuid` atomically (a temporary volume renamed into place).
    public func create(_ uuid: String, header: CBTLogHeader) throws {
        let tmp = temporary(uuid)
        if container.exists(tmp) { try container.remove(tmp) }
        let store = try container.create(tmp, size: CBTLog.byteCount(forSize: header.size))
        try CBTLog.create(on: store, header: header)
        try container.rename(tmp, to: name(uuid))
        try container.sync()
    }

    /// `vdi_enable_cbt`: a new, consistent, unlinked log for VDI `uuid` of `size` bytes; nothing
    /// when it has one. Returns whether a log was made.
    @discardableResult
    public func enable(_ uuid: String, size: UInt64) throws -> Bool {
        guard !exists(uuid) else { return false }
        try create(uuid, header: CBTLogHeader(consistent: true, size: size))
        return true
    }

    /// `vdi_disable_cbt`: removes VDI `uuid`'s log; the log before it no longer has a child.
    public func disable(_ uuid: String) throws {
        guard exists(uuid) else { return }
        if let p = try header(uuid).parent, exists(p) {
            try update(p) { if $0.child == uuid { $0.child = nil } }
        }
        try container.remove(name(uuid))
        try container.sync()
    }

    /// Removes VDI `uuid`'s log as `vdi_delete` does: its neighbours are linked to each other and
    /// its bitmap is added to its child's, so that the changes it recorded still count between
    /// the snapshots around it. The child's datapath must not be running (the caller pauses it).
    public func remove(_ uuid: String) throws {
        guard exists(uuid) else { return }
        let h = try header(uuid)
        if let p = h.parent, exists(p) { try update(p) { if $0.child == uuid { $0.child = h.child } } }
        if let c = h.child, exists(c) {
            let child = try open(c, writable: true)
            var ch = try child.header()
            var bits = try child.bitmap(ch)
            bits.formUnion(try open(uuid).bitmap(h))
            try child.writeBitmap(bits)
            if ch.parent == uuid { ch.parent = h.parent }
            // A log made inconsistent by a crash taints what it is merged into.
            if !h.consistent { ch.consistent = false }
            try child.writeHeader(ch)
            try child.sync()
        }
        try container.remove(name(uuid))
        try container.sync()
    }

    /// Grows VDI `uuid`'s log to a disk of `size` bytes (after a resize); nothing without a log.
    public func grow(_ uuid: String, toSize size: UInt64) throws {
        guard exists(uuid) else { return }
        let log = try open(uuid, writable: true)
        if container.sizingPolicy == .inflateBeforeGrowth {
            try container.resize(name(uuid), to: max(log.store.size, CBTLog.byteCount(forSize: size)))
        }
        try CBTLog(store: try container.open(name(uuid), writable: true)).grow(toSize: size)
    }
}
