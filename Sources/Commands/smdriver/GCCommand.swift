import ArgumentParser
import Foundation
import Logging
import SMCore

/// `smdriver gc --sr UUID`: runs the SR's garbage collector in the foreground with progress (the
/// Python SM's `cleanup -g`), or in the background (`--background`, as SMAPI commands start it),
/// asks a running one to stop (`--abort`), or prints what it is doing (`--status`).
struct GCCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "gc", abstract: "Garbage collection and coalescing of an SR.")

    @Option(help: "The SR's uuid.") var sr: String
    @Flag(help: "Run quietly (as started after SMAPI commands); the log is SMlog.") var background = false
    @Flag(help: "Ask a running collector to stop at its next safe point, and wait for it.") var abort = false
    @Flag(help: "Print the collector's status (JSON with --json).") var status = false
    @Flag(help: "With --status: the status file as JSON.") var json = false
    @Option(help: "Longest pause of a running disk for a leaf merge, seconds (default 2).") var pauseBudget: Double?
    @Option(help: "Cap on merge bandwidth, MB/s.") var bandwidth: Double?
    @Flag(help: "Do not coalesce leaves.") var noLeafCoalesce = false
    @Flag(help: "Only remove garbage (no coalescing).") var garbageOnly = false
    @Option(help: "Keep running, looking for work every N seconds, until terminated or aborted.") var interval: Double?

    /// The driver the executable stands for (set by main before parsing).
    nonisolated(unsafe) static var driver: (any SRDriver)?

    func validate() throws {
        guard VDIName.isUUID(sr) else { throw ValidationError("--sr must be an SR uuid") }
        if let b = pauseBudget, !(b > 0) { throw ValidationError("--pause-budget must be positive") }
        if let b = bandwidth, !(b > 0) { throw ValidationError("--bandwidth must be positive") }
    }

    func run() throws {
        let run = RunDirectory.current
        let control = GCControl(run: run, sr: sr)
        if status {
            guard let s = control.status() else { print("no collector has run for SR \(sr) on this host"); return }
            if json, let text = try? String(contentsOfFile: control.statusFile, encoding: .utf8) { print(text) } else {
                print((control.isRunning ? "" : "(not running) ") + s.summary)
                for (vdi, why) in s.skippedForSpace.sorted(by: { $0.key < $1.key }) { print("skipped \(vdi): \(why)") }
            }
            return
        }
        if abort {
            let stopped = control.abort(timeout: 60)
            print(stopped ? "no collector running for SR \(sr)" : "the collector of SR \(sr) did not stop within 60 s")
            if !stopped { throw ExitCode(1) }
            return
        }
        var log = Logger(label: "SMGC") { label in
            SMLogHandler(label: label, path: run.logFile, echo: ProcessInfo.processInfo.environment["SWIFTSM_LOG_STDERR"] != nil)
        }
        log[metadataKey: "sr"] = "\(sr)"
        var options = GCOptions()
        var overrides: Set<PartialKeyPath<GCOptions>> = []
        if let b = pauseBudget { options.pauseBudget = b; overrides.insert(\GCOptions.pauseBudget) }
        if let m = bandwidth { options.bandwidthLimit = m * 1e6; overrides.insert(\GCOptions.bandwidthLimit) }
        if noLeafCoalesce || garbageOnly { options.leafCoalesce = false; overrides.insert(\GCOptions.leafCoalesce) }
        if garbageOnly { options.coalesce = false; overrides.insert(\GCOptions.coalesce) }
        GCTermination.install()
        let gc: GarbageCollector
        do {
            let driver = Self.driver!
            gc = try GarbageCollector.forAttachedSR(sr, container: { try driver.container(DriverContext(plug: $0, run: run, log: log)) },
                                                    run: run, log: log, options: options, overrides: overrides)
        } catch let e as GarbageCollector.SetupError {
            if background { log.notice("GC: \(e)"); return }
            FileHandle.standardError.write(Data("smdriver gc: \(e)\n".utf8))
            throw ExitCode(1)
        }
        if !background { gc.onStatus = { print($0.summary) } }
        let report = gc.collect(every: interval)
        if !background { print(Self.describe(report)) }
    }

    /// The final line of a foreground run.
    static func describe(_ r: GCReport) -> String {
        if r.alreadyRunning { return "another collector is running for this SR" }
        var s = "removed \(r.removed.count), coalesced \(r.coalesced.count), leaf-coalesced \(r.leafCoalesced.count), "
            + "merged \(ByteCount.describe(r.bytesMerged))"
        if let m = r.pauses.max() { s += String(format: ", longest pause %.3f s over %d pauses", m, r.pauses.count) }
        if !r.recovered.isEmpty { s += ", recovered \(r.recovered.joined(separator: " "))" }
        for (vdi, why) in r.gaveUp.sorted(by: { $0.key < $1.key }) { s += "\ngave up on \(vdi): \(why)" }
        for (vdi, why) in r.skippedForSpace.sorted(by: { $0.key < $1.key }) { s += "\nskipped \(vdi): \(why)" }
        if r.aborted { s += " (aborted)" }
        return s
    }
}
