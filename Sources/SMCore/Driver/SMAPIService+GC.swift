import Foundation

/// Where SMAPI commands meet the collector: they finish its interrupted journals when none runs,
/// announce new work after deletes, snapshots, clones and scans (and start one through
/// `collectorStarter`), stop it before the SR goes away, and record how the SR was attached so
/// a collector started later reaches the same container.
extension SMAPIService {
    /// A collector for the SR of `c`, working under the SR lock the command holds.
    func collector(_ c: DriverContext) throws -> GarbageCollector {
        let gc = GarbageCollector(sr: try c.srUUID(), repo: try repository(c), run: run, callbacks: c.callbacks, log: c.log)
        gc.holdsSRLock = true
        return gc
    }

    /// Finishes or rolls back the collector's journals unless a collector is running (it owns them).
    func recoverCollectorJournals(_ c: DriverContext) throws {
        guard !GCControl(run: run, sr: try c.srUUID()).isRunning else { return }
        let handled = try collector(c).recoverJournals()
        if !handled.isEmpty { c.log.notice("recovered collector journals: \(handled)") }
    }

    /// Announces new work to the SR's collector and asks for one to start (the Python SM's
    /// `cleanup.start_gc_service`). Never fails the command.
    func kickCollector(_ c: DriverContext) {
        // The collector runs on the SR master only (reference §4.1).
        guard c.request.isMaster, let sr = try? c.srUUID() else { return }
        GCControl(run: run, sr: sr).kick()
        collectorStarter?(sr)
    }

    /// Stops the SR's collector (if one runs) and keeps it from starting while `body` runs.
    func withCollectorStopped<T>(_ c: DriverContext, _ body: () throws -> T) throws -> T {
        guard let held = GCControl(run: run, sr: try c.srUUID()).stopAndHold(timeout: 60) else {
            throw SMAPIError(.SMGeneral, opterr: "the garbage collector did not stop within 60 s")
        }
        defer { held.unlock() }
        return try body()
    }

    /// Records the SR's device_config for collectors started outside an SMAPI call.
    func recordPlug(_ c: DriverContext) {
        guard let sr = try? c.srUUID() else { return }
        let record = SRPlugRecord(sr: sr, deviceConfig: c.request.deviceConfig.dictionary,
                                  smConfig: c.request.srSMConfig?.dictionary, otherConfig: c.srOtherConfig())
        do { try record.write(run: run) } catch {
            c.log.warning("could not record the SR's attach: \(error)")
        }
    }
}
