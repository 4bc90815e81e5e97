import LVM
import SMCore
import VHD

/// Journal entries as LVs: entry `name` is LV `journal-<name>` tagged `journaler` (at least 4 MiB,
/// as the Python SM's journal LVs), holding `"<length> "` and the bytes (the Python SM's format
/// for values kept inside the LV). The bytes go to extents free in the committed VG and are
/// synced before the one commit that names them (replacing an older entry), so after a crash an
/// entry reads back whole or not at all.
extension LVHDContainer {
    /// Stores entry `name` durably, replacing one of the same name.
    public func writeJournal(_ name: String, _ bytes: [UInt8]) throws {
        let lv = LVHDLayout.journalVolume(name), staging = lv + ".new"
        let payload = Array("\(bytes.count) ".utf8) + bytes
        try group.update("journal \(name)") { vg in
            if vg.lv(staging) != nil { try vg.removeLV(staging) }
            let size = max(LVHDLayout.journalVolumeSize, UInt64(payload.count))
            try vg.createLV(name: staging, extents: vg.extents(forBytes: size), tags: [LVHDLayout.journalTag])
            let store = try group.store(of: staging, in: vg, writable: true)
            try store.write(payload, at: 0)
            try store.sync()
            if vg.lv(lv) != nil { try vg.removeLV(lv) }
            try vg.renameLV(staging, to: lv)
        }
    }

    /// Every entry, by name. The Python SM's own journal LVs (`<type>_<id>_<value>`, tagged
    /// `journaler`, left by an interrupted operation of the Python SM) are entries too, named
    /// by their LV and holding their value, so recovery sees them (and refuses to go on, as no
    /// layer here owns them) rather than missing them.
    public func journals() throws -> [String: [UInt8]] {
        let vg = try group.current()
        var out: [String: [UInt8]] = [:]
        for lv in vg.logicalVolumes where lv.tags.contains(LVHDLayout.journalTag) {
            if let name = LVHDLayout.journalName(ofVolume: lv.name) {
                out[name] = try read(lv.name, in: vg)
            } else {
                out[lv.name] = foreignValue(lv.name, in: vg)
            }
        }
        return out
    }

    /// Entry `name`, nil without one.
    public func journal(_ name: String) throws -> [UInt8]? {
        let vg = try group.current()
        let lv = LVHDLayout.journalVolume(name)
        if vg.lv(lv) != nil { return try read(lv, in: vg) }
        if let foreign = vg.lv(name), foreign.tags.contains(LVHDLayout.journalTag) { return foreignValue(name, in: vg) }
        return nil
    }

    /// Removes entry `name` (one commit); nothing when there is none.
    public func removeJournal(_ name: String) throws {
        let lv = LVHDLayout.journalVolume(name)
        try group.update("remove journal \(name)") { vg in
            if vg.lv(lv) != nil {
                try vg.removeLV(lv)
            } else if let foreign = vg.lv(name), foreign.tags.contains(LVHDLayout.journalTag) {
                try vg.removeLV(name)
            }
        }
    }

    /// The value of a Python SM journal LV: `"<length> <value>"` inside it, else the part of its
    /// name after `<type>_<id>_`.
    func foreignValue(_ lv: String, in vg: VolumeGroup) -> [UInt8] {
        if let inside = try? read(lv, in: vg) { return inside }
        let parts = lv.split(separator: "_", maxSplits: 2, omittingEmptySubsequences: false)
        return parts.count == 3 ? Array(parts[2].utf8) : []
    }

    /// The bytes a journal LV holds after its `"<length> "` prefix.
    private func read(_ lv: String, in vg: VolumeGroup) throws -> [UInt8] {
        let store = try group.store(of: lv, in: vg, writable: false)
        var head = [UInt8](repeating: 0, count: 24)
        try head.withUnsafeMutableBytes { try store.read(into: $0, at: 0) }
        guard let space = head.firstIndex(of: UInt8(ascii: " ")), space > 0,
              let length = UInt64(String(decoding: head[..<space], as: UTF8.self)),
              length <= store.size - UInt64(space + 1) else { throw LVHDError.corruptJournal(lv) }
        var bytes = [UInt8](repeating: 0, count: Int(length))
        if length > 0 { try bytes.withUnsafeMutableBytes { try store.read(into: $0, at: UInt64(space + 1)) } }
        return bytes
    }

    /// Undoes the Python SM's interrupted inflates, as its `_undoAllInflateJournals` does: for
    /// each journal LV `inflate_<vdi>_<old size>` (tag `journaler`), the VHD's footer (found at
    /// the LV's end, or its backup copy at 0 when an inflate zeroed the end) is written at the
    /// old size's end, the LV is shrunk back to that size in one commit, and the journal LV is
    /// removed. Returns the VDIs put back.
    @discardableResult
    public func undoPythonInflates() throws -> [String] {
        var undone: [String] = []
        for lv in try group.current().logicalVolumes where lv.tags.contains(LVHDLayout.journalTag) && lv.name.hasPrefix("inflate_") {
            let parts = lv.name.split(separator: "_", maxSplits: 2).map(String.init)
            guard parts.count == 3, VDIName.isUUID(parts[1]), let size = UInt64(parts[2]) else { throw LVHDError.corruptJournal(lv.name) }
            let name = naming.volume(parts[1])
            if exists(name) {
                let target = roundedToExtents(size)
                let image = try VHDImage(store: try open(name, writable: true), path: path(of: name), writable: true)
                if target < image.store.size {
                    guard image.endOfData <= target - 512 else { throw LVHDError.corruptJournal(lv.name) }
                    try image.store.write(image.footer.encoded(), at: target - 512)
                    try image.store.sync()
                    try resize(name, to: target, lastSector: nil)
                }
                undone.append(parts[1])
            }
            try group.update("remove journal \(lv.name)") { vg in try vg.removeLV(lv.name) }
        }
        return undone
    }
}
