import Foundation
import VHD

/// Leaf coalesce (reference §4.5): a visible leaf whose hidden parent has no other child is
/// merged into the parent, which then takes the leaf's name, so the VDI keeps its uuid with one
/// image less in its chain. While the leaf holds more than the pause budget can merge, rounds of
/// snapshot-and-coalesce (the leaf's data becomes a hidden node merged live into the parent, the
/// leaf starts empty again) shrink it; the last merge runs under the SR lock with the datapath
/// paused. A leaf written faster than it can be merged is given up and retried on a later run;
/// so is one whose next step (a round: a new empty leaf and a merge; or the last merge) the SR
/// has no room for.
///
/// Journal `leaf_<vdi>` covers the last merge; renaming the leaf to `OLD_<vdi>` marks the merge as
/// complete: before it, recovery rolls back (the leaf is intact); after it, recovery finishes.
extension GarbageCollector {
    /// The volume a merged leaf is renamed to until the parent has taken its name.
    func oldVolume(_ vdi: String) -> String { container.naming.retired(vdi) }

    /// Whether leaf `vdi`'s volume shares one page cache with every process on this host (a
    /// local file): its datapath's unflushed writes are then seen by the merge without a sync.
    func sharesPageCache(_ vdi: String) -> Bool { (try? repo.image(vdi, loadBAT: false))?.store is any DescriptorStore }

    /// Coalesces leaf `vdi` into its parent.
    func leafCoalesce(_ vdi: String) throws {
        var tracker = CoalesceTracker()
        var round = 0
        while true {
            try checkAbort()
            let (parent, size) = try leafCandidate(vdi)
            if fitsPauseBudget(size) {
                try ensureRoom(vdi, into: parent, for: "leaf coalesce \(vdi) into \(parent)")
                try finalLeafMerge(vdi, into: parent)
                return
            }
            if let why = tracker.record(size) { throw GCError.gaveUp(why) }
            let base = VDIName.newUUID()
            try ensureRoom(vdi, into: parent, snapshotBase: base, for: "leaf coalesce \(vdi) into \(parent), snapshot round")
            round += 1
            status.step = "leaf coalesce \(vdi): round \(round), \(ByteCount.describe(size)) to merge"
            log.info("GC: \(status.step)")
            let result: VHDRepository.SnapshotResult = try withSRLock {
                _ = try leafCandidate(vdi)
                return try withPaused([vdi], flushFirst: true) { try repo.snapshot(uuid: vdi, copyUUID: nil, baseUUID: base) }
            }
            guard result.base != nil else { continue }
            try coalesce(base)
        }
    }

    /// The parent of leaf `vdi` and the bytes of its allocated blocks, if it is still a leaf
    /// coalesce candidate.
    func leafCandidate(_ vdi: String) throws -> (parent: String, size: UInt64) {
        let tree = VDITree(try repo.scan())
        guard tree.leafCoalesceCandidates().contains(vdi), let parent = tree.vdis[vdi]?.parent else {
            throw GCError.changed("\(vdi) is no longer a leaf coalesce candidate")
        }
        let image = try repo.image(vdi)
        return (parent, UInt64(image.allocatedBlockCount) * UInt64(image.blockSize))
    }

    /// Whether merging `size` bytes is expected to take at most half the pause budget (the
    /// Python SM's safety margin), from the SR's recorded speeds; without any, whether it is small.
    func fitsPauseBudget(_ size: UInt64) -> Bool {
        guard let speed = SpeedLog(path: control.speedFile).mean() else { return size <= options.leafSizeWithoutEstimate }
        return Double(size) / speed <= options.pauseBudget * 0.5
    }

    /// The last merge: under the SR lock, with the leaf's datapath paused, merged within the
    /// pause budget (else rolled back and given up), then the parent takes the leaf's name.
    func finalLeafMerge(_ vdi: String, into parent: String) throws {
        status.step = "leaf coalesce \(vdi) into \(parent)"
        log.info("GC: \(status.step)")
        try withSRLock {
            _ = try leafCandidate(vdi)
            let journal = GCJournal.leaf(vdi: vdi, parent: parent)
            // Without a sync where the leaf shares this host's page cache: the merge reads its
            // data back through that cache, and the parent that receives it is forced to disk by
            // the merge itself. Other stores (over the network) are flushed at the pause.
            try withPaused([vdi], sync: !sharesPageCache(vdi)) {
                try container.writeJournal(journal.name, journal.encoded())
                FaultPoint.hit("gc.leaf.after-journal")
                do { try merge(vdi, into: parent, deadline: options.pauseBudget, afterFirstBlock: { FaultPoint.hit("gc.leaf.mid-merge") }) } catch {
                    try container.removeJournal(journal.name)
                    throw error
                }
                FaultPoint.hit("gc.leaf.after-merge")
                try container.rename(repo.volume(vdi), to: oldVolume(vdi))
                try container.sync()
                FaultPoint.hit("gc.leaf.after-rename-old")
                try finishLeafCoalesce(vdi, parent: parent)
            }
        }
        forget(parent)
        updateRecord(vdi)
        report.leafCoalesced.append(vdi)
        status.leafCoalesced += 1
        status.skippedForSpace[vdi] = nil
        updateSRStats()
        log.info("GC: leaf \(vdi) coalesced into \(parent), which now carries its uuid")
    }

    /// The part after the merge is known complete (`OLD_<vdi>` exists): the parent is un-hidden
    /// and renamed to the leaf's name, the old leaf removed, the journal removed. Idempotent.
    func finishLeafCoalesce(_ vdi: String, parent: String) throws {
        if container.exists(repo.volume(parent)) {
            try repo.setHidden(parent, false)
            FaultPoint.hit("gc.leaf.after-unhide")
            try container.rename(repo.volume(parent), to: repo.volume(vdi))
            try container.sync()
            FaultPoint.hit("gc.leaf.after-rename-parent")
        }
        let merged = try repo.state(vdi)
        try container.prepareForGrowth(repo.volume(vdi), virtualSize: merged.virtualSize)
        if container.exists(oldVolume(vdi)) { try container.remove(oldVolume(vdi)) }
        try container.sync()
        FaultPoint.hit("gc.leaf.before-commit")
        try container.removeJournal(GCJournal.leaf(vdi: vdi, parent: parent).name)
    }

    /// Recovery of an interrupted leaf coalesce (SR lock held): finished when the merge was
    /// complete, else rolled back; the leaf's datapath, if a crash left it paused, is resumed.
    func recoverLeafCoalesce(_ vdi: String, parent: String) throws {
        try withPaused([vdi]) {
            // Complete once the leaf was renamed away; the parent renamed too means only the
            // journal (and the records) were left.
            if container.exists(oldVolume(vdi)) || !container.exists(repo.volume(parent)) {
                try finishLeafCoalesce(vdi, parent: parent)
                forget(parent)
                updateRecord(vdi)
            } else {
                // The leaf is intact and still shadows whatever reached the parent.
                if container.exists(repo.volume(parent)), try !repo.state(parent).hidden { try repo.setHidden(parent, true) }
                try container.removeJournal(GCJournal.leaf(vdi: vdi, parent: parent).name)
            }
        }
    }
}
