import Foundation
import VHD

/// Free space before a merge: a merge that does not fit the SR (with the options' margin left
/// over) is not started, so the SR is never filled by a merge that fails half-way; the candidate
/// is skipped for the rest of the run (`GCError.noSpace`) and retried by a later one.
extension GarbageCollector {
    /// The room merging `child` into `parent` takes, with a new empty leaf over a base copy named
    /// `snapshotBase` first when it is a snapshot round of a leaf coalesce.
    func coalesceSpace(_ child: String, into parent: String, snapshotBase: String? = nil) throws -> CoalesceSpace {
        let childImage = try repo.image(child)
        let parentImage = try repo.image(parent)
        if let base = snapshotBase {
            return try CoalesceSpace(snapshotRoundOf: childImage, into: parentImage, baseVolume: repo.volume(base))
        }
        return try CoalesceSpace(merging: childImage, into: parentImage)
    }

    /// Throws `noSpace` unless the SR has `space` free beyond its margin.
    func ensureRoom(_ space: CoalesceSpace, for what: String) throws {
        let free = try container.freeSpace()
        let margin = options.spaceMargin(srSize: try container.capacity().size)
        let (wanted, overflow) = space.total.addingReportingOverflow(margin)
        if !overflow && wanted <= free {
            log.debug("GC: \(what) needs \(space.total) bytes, \(free) free")
            return
        }
        throw GCError.noSpace(needed: space.total, margin: margin, free: free)
    }

    /// Records a candidate skipped for want of space: in the report, the status and the log.
    func recordSkippedForSpace(_ uuid: String, _ error: GCError) {
        report.skippedForSpace[uuid] = error.description
        status.skippedForSpace[uuid] = error.description
        log.warning("GC: \(uuid) not coalesced: \(error); retried on a later run")
    }
}
