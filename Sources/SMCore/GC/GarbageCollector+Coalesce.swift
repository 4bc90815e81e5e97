import Foundation
import VHD

/// Coalescing a hidden node into its parent (reference §4.4): the merge runs without the SR lock
/// (the node shadows every sector it writes into the parent, and the parent has no other
/// reader), then, under the lock, the node's children are relinked to the parent and the node
/// is removed. Journal `coalesce_<node>` marks the merge, `relink_<node>` its completion. A merge
/// the SR has no room for is not started (`ensureRoom`).
extension GarbageCollector {
    /// Merges hidden node `node` into its parent, relinks its children and removes it.
    func coalesce(_ node: String) throws {
        let parent: String = try withSRLock {
            let tree = VDITree(try repo.scan())
            guard tree.coalesceCandidates().contains(node), let p = tree.vdis[node]?.parent else {
                throw GCError.changed("\(node) is no longer a coalesce candidate")
            }
            try ensureRoom(node, into: p, for: "coalesce \(node) into \(p)")
            try container.writeJournal(GCJournal.coalesce(node: node, parent: p).name, GCJournal.coalesce(node: node, parent: p).encoded())
            return p
        }
        FaultPoint.hit("gc.coalesce.after-journal")
        status.step = "coalesce \(node) into \(parent)"
        log.info("GC: \(status.step)")
        do { try merge(node, into: parent, afterFirstBlock: { FaultPoint.hit("gc.coalesce.mid-merge") }) } catch {
            try? container.removeJournal(GCJournal.coalesce(node: node, parent: parent).name)
            throw error
        }
        FaultPoint.hit("gc.coalesce.after-merge")
        // The parent stays a hidden, read-only node: it gives back what it does not use (LVs deflate).
        try container.settleReadOnly(repo.volume(parent))
        let relink = GCJournal.relink(node: node, parent: parent)
        try container.writeJournal(relink.name, relink.encoded())
        try container.removeJournal(GCJournal.coalesce(node: node, parent: parent).name)
        FaultPoint.hit("gc.coalesce.after-relink-journal")
        try withSRLock { try self.relink(node, into: parent) }
        report.coalesced.append(node)
        status.coalesced += 1
        status.skippedForSpace[node] = nil
        updateSRStats()
    }

    /// Relinks every child of `node` to `parent` (the active leaves below then reopen), removes
    /// `node` and the `relink_<node>` journal, and updates the toolstack's records. Idempotent:
    /// recovery runs it again after a crash at any point. The SR lock is held.
    func relink(_ node: String, into parent: String) throws {
        let journal = GCJournal.relink(node: node, parent: parent)
        let tree = VDITree(try repo.scan())
        guard tree.vdis[node] != nil else {
            // Crashed after the node was removed: only the journal and the records are left to do.
            try container.removeJournal(journal.name)
            forget(node)
            for child in tree.children(of: parent) { updateRecord(child) }
            return
        }
        guard tree.vdis[parent] != nil else {
            throw RepositoryError.corruptVolume(repo.volume(parent), "relink of \(node): the parent is missing")
        }
        let children = tree.children(of: node)
        let leaves = children.flatMap { tree.leaves(below: $0) }
        // A running datapath never rewrites its leaf's header, so children are relinked under it;
        // it then reopens its chain (without the node) before the node goes. The leaves' VDI
        // locks keep a new activation from opening a half-relinked chain.
        try withVDILocks(leaves) {
            for child in children {
                try Relink.run(child: repo.path(child), newParent: repo.path(parent), provider: container.provider)
                FaultPoint.hit("gc.relink.after-child")
            }
            try container.sync()
            try refresh(leaves)
            FaultPoint.hit("gc.relink.before-remove")
            try container.remove(repo.volume(node))
            try container.sync()
        }
        FaultPoint.hit("gc.relink.before-commit")
        try container.removeJournal(journal.name)
        forget(node)
        updateRecord(parent)
        // Every child of the parent: those relinked now and those a crashed run relinked before.
        for child in try VDITree(repo.scan()).children(of: parent) { updateRecord(child) }
        log.info("GC: relinked \(children) to \(parent), removed \(node)")
    }

    /// Merges `child` into `parent` (its parent) with `Coalesce`, honouring aborts, the bandwidth cap and
    /// `deadline` (seconds), reporting progress and recording the speed; `afterFirstBlock` runs
    /// once the first block is in the parent (a crash point). Progress, speed and the bandwidth
    /// cap count the child's allocated blocks (what the merge reads and writes); the report counts
    /// the data sectors copied. Returns the bytes of allocated child blocks merged.
    @discardableResult
    func merge(_ child: String, into parent: String, deadline: Double? = nil,
               afterFirstBlock: @escaping () -> Void = {}) throws -> UInt64 {
        let image = try repo.image(child)
        // A parent smaller than the child (the VDI was resized since) grows first, through the
        // repository: its resize journal is one that recovery knows.
        if try repo.state(parent).virtualSize < image.virtualSize { _ = try repo.resize(uuid: parent, size: image.virtualSize) }
        // The parent must be able to take the child's blocks (LVs inflate; files grow on write).
        try container.prepareForGrowth(repo.volume(parent), virtualSize: image.virtualSize)
        let blockSize = UInt64(image.blockSize)
        let allocated = UInt64(image.allocatedBlockCount) * blockSize
        status.stepBytesTotal = allocated
        status.stepBytesDone = 0
        publish(force: true)
        let start = Date()
        var done: UInt64 = 0
        var data: UInt64 = 0
        var timedOut = false
        do {
            try Coalesce.run(child: repo.path(child), provider: container.provider, progress: { block, _ in
                guard image.isAllocated(block - 1) else { return }
                done += blockSize
                if done == blockSize { afterFirstBlock() }
                self.status.stepBytesDone = done
                if let cap = self.options.bandwidthLimit, cap > 0 {
                    // Hold back until the cap allows what was merged, looking for an abort meanwhile.
                    let due = Double(done) / cap
                    var wait = due - Date().timeIntervalSince(start)
                    while wait > 0 && !self.shouldStop {
                        usleep(useconds_t(min(wait, 0.2) * 1_000_000))
                        wait = due - Date().timeIntervalSince(start)
                    }
                }
                let seconds = max(Date().timeIntervalSince(start), 1e-6)
                self.status.megabytesPerSecond = Double(done) / seconds / 1e6
                self.publish()
            }, shouldCancel: {
                if let d = deadline, Date().timeIntervalSince(start) > d { timedOut = true; return true }
                return self.shouldStop
            }, merged: { data += $0 })
        } catch VHDError.cancelled {
            if timedOut { throw GCError.gaveUp("the merge took longer than \(deadline ?? 0) s") }
            throw GCError.aborted
        }
        let seconds = Date().timeIntervalSince(start)
        status.bytesDone += data
        report.bytesMerged += data
        status.megabytesPerSecond = Double(allocated) / max(seconds, 1e-6) / 1e6
        // Tiny merges say more about fixed costs than about speed.
        if allocated >= 16 << 20 { SpeedLog(path: control.speedFile).record(Double(allocated) / max(seconds, 1e-6)) }
        log.info("GC: merged \(child): \(ByteCount.describe(data)) of data in \(ByteCount.describe(allocated)) of blocks, \(String(format: "%.2f", seconds)) s")
        publish(force: true)
        return allocated
    }
}
