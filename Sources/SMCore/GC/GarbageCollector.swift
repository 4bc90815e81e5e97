import Foundation
import Logging
import VHD

/// The garbage collector and coalescer of one SR (reference §4): removes hidden VDIs nothing
/// needs, merges hidden nodes that are their parent's only child into the parent, and merges
/// leaves into their parent, live ones by snapshot-and-coalesce rounds until the rest fits the
/// pause budget. One runs per SR at a time (`GCControl.activeLock`); every multi-step change is
/// journaled (`GCJournal`) and finished or rolled back by `recoverJournals()`, which the next run
/// and the SR's next attach, scan or VDI command call. Long merges run without the SR lock;
/// the lock is held only for short steps, so SR operations wait at most about a pause budget.
public final class GarbageCollector {
    /// The SR.
    public let sr: String
    /// The SR's VDIs.
    public let repo: VHDRepository
    /// The host's run directory.
    public let run: RunDirectory
    /// Where XenAPI records are kept up to date.
    public let callbacks: any XenAPICallbacks
    /// The log.
    public let log: Logger
    /// How to work.
    public var options: GCOptions
    /// Called with each new status (progress output of a foreground run).
    public var onStatus: ((GCStatus) -> Void)?
    /// Set when the caller already holds the SR lock (an SMAPI command recovering journals or
    /// removing garbage before `sr_delete`).
    public var holdsSRLock = false

    /// The SR's control files.
    public var control: GCControl { GCControl(run: run, sr: sr) }
    var datapaths: DatapathManager { DatapathManager(run: run, log: log) }
    var container: any VolumeContainer { repo.container }

    var status = GCStatus()
    var report = GCReport()
    var lastStatusWrite = 0.0
    /// Candidates that failed this run (skipped until the next run, as the Python SM does).
    var failed: Set<String> = []

    /// A collector for SR `sr` over `repo`.
    public init(sr: String, repo: VHDRepository, run: RunDirectory, callbacks: any XenAPICallbacks = NoCallbacks(),
                log: Logger, options: GCOptions = GCOptions()) {
        self.sr = sr
        self.repo = repo
        self.run = run
        self.callbacks = callbacks
        self.log = log
        self.options = options
    }

    // MARK: - Running

    /// Runs until there is no work left (or an abort): recovery, garbage, coalesce, leaf
    /// coalesce, one step at a time, looking again whenever new work was announced. With `every`,
    /// stays (holding the SR's collector lock) and looks again every `every` seconds, or at once
    /// on a kick, until aborted or terminated. Returns at once, with `alreadyRunning`, when
    /// another collector runs for the SR.
    @discardableResult
    public func collect(every interval: Double? = nil) -> GCReport {
        report = GCReport()
        failed = []
        let active = control.activeLock()
        repeat {
            guard active.tryLock() else {
                if report.isEmpty { report.alreadyRunning = true }
                break
            }
            control.clearAbort()
            status = GCStatus()
            status.state = "running"
            publish(force: true)
            log.info("GC: started")
            do {
                while true {
                    repeat {
                        control.clearKick()
                        try passes()
                    } while control.kicked
                    guard let every = interval else { break }
                    status.state = "waiting"
                    publish(force: true)
                    try wait(every)
                    failed = []               // a new pass gives failed candidates another chance
                    status.state = "running"
                }
                status.state = "idle"
            } catch GCError.aborted {
                report.aborted = true
                status.state = "aborted"
                log.notice("GC: aborted")
            } catch {
                status.state = "failed"
                status.error = "\(error)"
                log.error("GC: failed: \(error)")
            }
            status.step = ""
            publish(force: true)
            log.info("GC: \(status.summary)")
            active.unlock()
        } while control.kicked && !report.aborted && status.state != "failed"
        return report
    }

    /// Sleeps up to `seconds`, returning early on a kick; throws `aborted` on an abort.
    func wait(_ seconds: Double) throws {
        let until = Date().addingTimeInterval(seconds)
        while Date() < until {
            try checkAbort()
            if control.kicked { return }
            usleep(100_000)
        }
    }

    /// One pass after another until nothing is left to do.
    func passes() throws {
        try withSRLock {
            // An SMAPI operation or an earlier collector interrupted (a snapshot round dies
            // as a snapshot does): finished or rolled back before anything else.
            let r = try repo.recover()
            report.recovered += r.completed + r.rolledBack + r.removed
            report.recovered += try recoverJournals()
        }
        while true {
            try checkAbort()
            let tree = try withSRLock { VDITree(try repo.scan()) }
            let active = Set(tree.vdis.keys.filter { datapaths.isActive(sr: sr, vdi: $0) })
            let garbage = tree.garbage(keep: active)
            // A parent served by a datapath of its own (a base copy attached read-only) must not
            // change under its reader.
            let parentIdle = { (u: String) in tree.vdis[u]?.parent.map { !active.contains($0) } ?? false }
            let nodes = options.coalesce
                ? tree.coalesceCandidates().filter { !failed.contains($0) && !active.contains($0) && parentIdle($0) } : []
            let leaves = options.leafCoalesce
                ? tree.leafCoalesceCandidates().filter { !failed.contains($0) && !options.leafCoalesceExcluded.contains($0) && parentIdle($0) }
                : []
            status.queuedGarbage = garbage.count
            status.queuedCoalesce = nodes.count
            status.queuedLeafCoalesce = leaves.count
            publish(force: true)
            if !garbage.isEmpty {
                try removeGarbage()
            } else if let node = nodes.first {
                try attempt(node) { try coalesce(node) }
            } else if let leaf = leaves.first {
                try attempt(leaf) { try leafCoalesce(leaf) }
            } else {
                return
            }
        }
    }

    /// Runs one candidate's step; a failure (other than an abort) skips the candidate for the rest
    /// of the run.
    func attempt(_ uuid: String, _ step: () throws -> Void) throws {
        do { try step() } catch GCError.aborted { throw GCError.aborted } catch {
            failed.insert(uuid)
            if let e = error as? GCError, case .noSpace = e {
                recordSkippedForSpace(uuid, e)
            } else if case let GCError.gaveUp(why) = error {
                report.gaveUp[uuid] = why
                status.lastGiveUp = "\(uuid): \(why)"
                log.notice("GC: leaf \(uuid) could not be coalesced: \(why); retried on a later run")
            } else {
                log.error("GC: \(uuid): \(error)")
            }
        }
        status.step = ""
    }

    // MARK: - Garbage

    /// Removes all garbage once, nothing else (the Python SM's `gc_force`, run by `sr_delete`);
    /// returns the uuids removed.
    @discardableResult
    public func removeAllGarbage() throws -> [String] {
        try removeGarbage()
        return report.removed
    }

    /// Removes every garbage VDI (rescanned under the SR lock, active ones kept), telling the toolstack.
    func removeGarbage() throws {
        let removed: [String] = try withSRLock {
            let tree = VDITree(try repo.scan())
            let journaled = Set(try container.journals().compactMap { GCJournal(name: $0.key, bytes: $0.value)?.subject.vdi })
            let keep = Set(tree.vdis.keys.filter { datapaths.isActive(sr: sr, vdi: $0) }).union(journaled)
            var done: [String] = []
            for uuid in tree.garbage(keep: keep) {
                try checkAbort()
                FaultPoint.hit("gc.garbage.before-remove")
                try container.remove(repo.volume(uuid))
                done.append(uuid)
            }
            try container.sync()
            return done
        }
        for uuid in removed {
            forget(uuid)
            log.info("GC: removed garbage \(uuid)")
        }
        report.removed += removed
        status.removed += removed.count
        updateSRStats()
    }

    // MARK: - Helpers

    /// Throws `aborted` when an abort was asked for or the process is terminating.
    func checkAbort() throws {
        if shouldStop { throw GCError.aborted }
    }

    /// Whether to stop at the next safe point.
    var shouldStop: Bool { control.abortRequested || GCTermination.requested }

    /// Runs `body` holding the SR lock (waiting for it as long as no abort is asked for).
    func withSRLock<T>(_ body: () throws -> T) throws -> T {
        if holdsSRLock { return try body() }
        let lock = run.srLock(sr)
        do { try lock.lock(timeout: nil, giveUp: { self.shouldStop }) } catch {
            if shouldStop { throw GCError.aborted }
            throw error
        }
        defer { lock.unlock() }
        return try body()
    }

    /// Runs `body` with the datapaths of `vdis` that are active on this host paused, each
    /// unpaused afterwards onto its VDI's leaf; the time each was held is recorded. `sync` and
    /// `flushFirst` as `DatapathManager.withPaused`.
    func withPaused<T>(_ vdis: [String], sync: Bool = true, flushFirst: Bool = false, _ body: () throws -> T) throws -> T {
        guard let first = vdis.first else { return try body() }
        return try datapaths.withPaused(sr: sr, vdi: first, sync: sync, flushFirst: flushFirst,
                                        paused: { self.recordPause(first, $0) }) {
            try withPaused(Array(vdis.dropFirst()), sync: sync, flushFirst: flushFirst, body)
        }
    }

    /// Runs `body` holding the VDI locks of `vdis` (taken in uuid order, after the SR lock as
    /// every command takes them), so that none of them is activated meanwhile.
    func withVDILocks<T>(_ vdis: [String], _ body: () throws -> T) throws -> T {
        var held: [FileLock] = []
        defer { held.forEach { $0.unlock() } }
        for v in Set(vdis).sorted() {
            let lock = run.vdiLock(v)
            try lock.lock(timeout: 120, giveUp: { self.shouldStop })
            held.append(lock)
        }
        return try body()
    }

    /// Reopens the datapaths of `vdis` (those active here) on their leaves, their parents
    /// changed; the caller holds their VDI locks.
    func refresh(_ vdis: [String]) throws {
        for v in vdis {
            if let held = try datapaths.refresh(sr: sr, vdi: v, lockHeld: true) { recordPause(v, held) }
        }
    }

    /// Notes that `vdi`'s datapath held its requests for `seconds`.
    func recordPause(_ vdi: String, _ seconds: Double) {
        report.pauses.append(seconds)
        status.longestPause = max(status.longestPause, seconds)
        log.info("GC: \(vdi) was paused \(String(format: "%.3f", seconds)) s")
    }

    /// DB-FORGET, tolerating a VDI the toolstack never knew (a transient base copy).
    func forget(_ uuid: String) {
        do { try callbacks.forget(uuid: uuid) } catch { log.info("GC: forget \(uuid): \(error)") }
    }

    /// VDI-UPDATE of `uuid` as it is on disk now, tolerating one the toolstack does not know.
    func updateRecord(_ uuid: String) {
        do { try callbacks.update(try repo.state(uuid)) } catch { log.info("GC: update \(uuid): \(error)") }
    }

    /// SR-STATS after space was freed.
    func updateSRStats() {
        do {
            let (size, used) = try container.capacity()
            try callbacks.srStats(virtualAllocationDelta: 0, physicalSize: size, physicalUtilisation: used)
        } catch { log.info("GC: SR stats: \(error)") }
    }

    /// Writes the status file (at most twice a second unless forced) and reports it.
    func publish(force: Bool = false) {
        let now = Date().timeIntervalSince1970
        guard force || now - lastStatusWrite >= 0.5 else { return }
        lastStatusWrite = now
        status.updated = now
        control.write(status)
        onStatus?(status)
    }
}
