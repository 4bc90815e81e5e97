import Foundation
import Logging

/// The collector's auto-start policy (the Python SM's `cleanup.start_gc_service`): after an SMAPI
/// command leaves work, the running program starts itself again as `--driver <type> gc --sr
/// <uuid> --background`, detached, unless a collector already runs for the SR (it looks again
/// before it exits: the kick flag). `SWIFTSM_GC_AUTOSTART=0` turns this off.
public enum BackgroundCollector {
    /// Whether the environment allows starting collectors.
    public static var enabled: Bool { ProcessInfo.processInfo.environment["SWIFTSM_GC_AUTOSTART"] != "0" }

    /// A starter for `SMAPIService.collectorStarter` running this executable with driver `type`.
    public static func starter(type: String, run: RunDirectory, log: Logger) -> (String) -> Void {
        { sr in
            guard let me = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") else { return }
            let control = GCControl(run: run, sr: sr)
            guard !control.isRunning else { return }
            try? FileManager.default.createDirectory(atPath: control.directory, withIntermediateDirectories: true)
            do {
                _ = try DetachedProcess.spawn(me, arguments: ["--driver", type, "gc", "--sr", sr, "--background"],
                                              logFile: control.directory + "/output.log")
            } catch { log.warning("could not start the garbage collector: \(error)") }
        }
    }
}
