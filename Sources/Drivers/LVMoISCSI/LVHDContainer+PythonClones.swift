import LVM
import SMCore
import VHD

/// The Python SM's interrupted snapshots and clones, settled as its `_handleInterruptedCloneOps`
/// settles them when the master loads the SR. Its snapshot journals LV `clone_<vdi>_1` (tag
/// `journaler`, the value `<base>_<clone>` inside, the clone empty for a single snapshot), then
/// renames `VHD-<vdi>` to `VHD-<base>`, deflates it, makes the new leaf `VHD-<vdi>` (and
/// `VHD-<clone>`) over it, and only then hides the base and makes it read-only.
extension LVHDContainer {
    /// For each such journal: when the base was never made (the rename did not happen) nothing
    /// changed; when every new leaf is there and a valid child of the base, the snapshot is
    /// finished (the base hidden, deflated and read-only); else it is undone (the leaves removed,
    /// the base shown again, writable, renamed back to the VDI and inflated). The journal LV
    /// goes last. Returns the VDIs whose snapshot was finished or undone.
    @discardableResult
    public func settlePythonClones() throws -> [String] {
        var settled: [String] = []
        let vg = try group.current()
        for lv in vg.logicalVolumes where lv.tags.contains(LVHDLayout.journalTag) && lv.name.hasPrefix("clone_") {
            let parts = lv.name.split(separator: "_", maxSplits: 2).map(String.init)
            let value = String(decoding: foreignValue(lv.name, in: vg), as: UTF8.self).split(separator: "_", omittingEmptySubsequences: false)
            guard parts.count == 3, VDIName.isUUID(parts[1]), value.count == 2, VDIName.isUUID(String(value[0])),
                  value[1].isEmpty || VDIName.isUUID(String(value[1])) else { throw LVHDError.corruptJournal(lv.name) }
            let vdi = parts[1], base = String(value[0])
            let leaves = [vdi] + (value[1].isEmpty ? [] : [String(value[1])])
            if exists(naming.volume(base)) {
                if try leaves.allSatisfy({ try isValidChild(naming.volume($0), of: naming.volume(base)) }) {
                    try finishPythonSnapshot(base: naming.volume(base))
                } else {
                    try undoPythonSnapshot(vdi: naming.volume(vdi), base: naming.volume(base), leaves: leaves.map(naming.volume))
                }
                settled.append(vdi)
            }
            try group.update("remove journal \(lv.name)") { vg in try vg.removeLV(lv.name) }
        }
        return settled
    }

    /// Whether volume `name` holds a VHD whose parent is the VHD in `parent`.
    private func isValidChild(_ name: String, of parent: String) throws -> Bool {
        guard exists(name) else { return false }
        let parentImage = try VHDImage(store: try open(parent, writable: false), path: path(of: parent), writable: false)
        guard let child = try? VHDImage(store: try open(name, writable: false), path: path(of: name), writable: false) else { return false }
        return child.parentUUID == parentImage.footer.uuid
    }

    /// The base hidden (while its LV is still writable), then deflated and made read-only.
    private func finishPythonSnapshot(base: String) throws {
        if try !isReadOnly(base) {
            let image = try VHDImage(store: try open(base, writable: true), path: path(of: base), writable: true)
            if !image.hidden { try image.updateFooter { $0.hidden = 1 } }
            try image.store.sync()
        }
        try settleReadOnly(base)
    }

    /// The new leaves removed, the base writable, shown again, back under the VDI's name and
    /// inflated as a leaf.
    private func undoPythonSnapshot(vdi: String, base: String, leaves: [String]) throws {
        for leaf in leaves where exists(leaf) { try remove(leaf) }
        if try isReadOnly(base) { try resize(base, to: try utilisation(of: base), lastSector: nil, readOnly: false) }
        let image = try VHDImage(store: try open(base, writable: true), path: path(of: base), writable: true)
        if image.hidden { try image.updateFooter { $0.hidden = 0 } }
        try image.store.sync()
        let virtualSize = image.virtualSize
        try rename(base, to: vdi)
        try prepareForGrowth(vdi, virtualSize: virtualSize)
    }
}
