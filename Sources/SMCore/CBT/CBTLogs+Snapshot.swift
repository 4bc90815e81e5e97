import CBT

/// How a snapshot moves the logs (the Python SM's `_cbt_snapshot`): the VDI's log becomes the
/// snapshot's (it holds the changes up to the snapshot), the log before it names the snapshot as
/// its child, and the VDI starts a new, empty log whose parent is the snapshot. Each step can be
/// repeated and each can be undone, from whatever state a crash left, so that snapshot recovery
/// finishes or rolls back the logs with the VHDs.
extension CBTLogs {
    /// Moves VDI `vdi`'s log to `snapshot` and starts a new one for `vdi` of `size` bytes, linked
    /// to it; idempotent. Nothing when neither has a log (tracking off).
    public func linkSnapshot(vdi: String, snapshot: String, size: UInt64) throws {
        if exists(vdi) && !exists(snapshot) {
            try container.rename(name(vdi), to: name(snapshot))
            try container.sync()
            FaultPoint.hit("cbt.snapshot-after-rename")
        }
        guard exists(snapshot) else { return }
        let s = try header(snapshot)
        if let p = s.parent, exists(p) { try update(p) { $0.child = snapshot } }
        if !exists(vdi) {
            // The new log carries on the chain: its child is whatever followed the old one.
            try create(vdi, header: CBTLogHeader(parent: snapshot, child: s.child == vdi ? nil : s.child, consistent: true, size: size))
            FaultPoint.hit("cbt.snapshot-after-create")
        }
        guard try header(vdi).parent == snapshot else {
            throw CBTError.malformed("the log of \(vdi) does not continue the log of snapshot \(snapshot)")
        }
        try update(snapshot) { $0.child = vdi }
    }

    /// Undoes `linkSnapshot` from any state it reached: the new log removed, the snapshot's log
    /// back with the VDI, the log before it pointing at the VDI again.
    public func unlinkSnapshot(vdi: String, snapshot: String) throws {
        guard exists(snapshot) else { return }
        if exists(vdi) {
            let v = try header(vdi)
            guard v.parent == snapshot else { return }
            try update(snapshot) { if $0.child == vdi { $0.child = v.child } }
            try container.remove(name(vdi))
        }
        let s = try header(snapshot)
        if let p = s.parent, exists(p) { try update(p) { if $0.child == snapshot { $0.child = vdi } } }
        try container.rename(name(snapshot), to: name(vdi))
        try container.sync()
    }
}
