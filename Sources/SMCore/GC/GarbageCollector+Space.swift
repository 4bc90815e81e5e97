import Foundation
import VHD

/// Free space before a merge: a merge that does not fit the SR (with the options' margin left
/// over) is not started, so the SR is never filled by a merge that fails half-way; the candidate
/// is skipped for the rest of the run (`GCError.noSpace`) and retried by a later one.
extension GarbageCollector {
    /// The free space a merge into `parent` whose images need `space` takes from the container:
    /// the parent's volume holding what it grows by (a file grows; an LV inflates for the merge),
    /// the resize journal before it, and a snapshot round's new leaf.
    func bytesNeeded(_ space: CoalesceSpace, into parent: String, virtualSize: UInt64) throws -> UInt64 {
        let volume = repo.volume(parent)
        let parentNeed = try container.spaceToHold(imageBytes: try container.utilisation(of: volume) + space.parentGrowth,
                                                   virtualSize: virtualSize, in: volume, writable: true)
        let leafNeed = space.newLeaf == 0 ? 0
            : try container.spaceToHold(imageBytes: space.newLeaf, virtualSize: virtualSize, in: nil, writable: true)
        return leafNeed + max(space.resize + space.resizeJournal, parentNeed)
    }

    /// Throws `noSpace` unless the SR has room for merging `child` into `parent` (with a new empty
    /// leaf over a base copy named `snapshotBase` first, for a snapshot round) beyond its margin.
    func ensureRoom(_ child: String, into parent: String, snapshotBase: String? = nil, for what: String) throws {
        // Both images opened once, with their BATs: the figures come from their metadata.
        let childImage = try repo.image(child)
        let parentImage = try repo.image(parent)
        let space = try snapshotBase.map {
            try CoalesceSpace(snapshotRoundOf: childImage, into: parentImage, baseVolume: repo.volume($0))
        } ?? CoalesceSpace(merging: childImage, into: parentImage)
        let needed = try bytesNeeded(space, into: parent, virtualSize: childImage.virtualSize)
        let free = try container.freeSpace()
        let margin = options.spaceMargin(srSize: try container.capacity().size)
        let (wanted, overflow) = needed.addingReportingOverflow(margin)
        if !overflow && wanted <= free {
            log.debug("GC: \(what) needs \(needed) bytes, \(free) free")
            return
        }
        throw GCError.noSpace(needed: needed, margin: margin, free: free)
    }

    /// Records a candidate skipped for want of space: in the report, the status and the log.
    func recordSkippedForSpace(_ uuid: String, _ error: GCError) {
        report.skippedForSpace[uuid] = error.description
        status.skippedForSpace[uuid] = error.description
        log.warning("GC: \(uuid) not coalesced: \(error); retried on a later run")
    }
}
