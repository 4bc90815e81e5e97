import ArgumentParser
import Foundation
import VHD

/// `vhd-bench time-scan DIR --iterations 10`: times `Scan.run` over a folder in-process.
struct TimeScanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "time-scan", abstract: "Median time of Scan.run over a folder, in-process.")
    @Argument(help: "Folder of VHDs.") var directory: String
    @Option(help: "Timed iterations.") var iterations: Int = 10
    @Option(help: "Untimed iterations first.") var warmup: Int = 1
    @Flag(help: "Print every sample in ms.") var verbose = false

    func run() throws {
        try VHDBench.guarded {
            let p = FileStoreProvider()
            var samples: [Double] = []
            var found = 0, failed = 0
            for i in 0..<(warmup + iterations) {
                var entries: [Scan.Entry] = []
                let t = try Timing.seconds { entries = try Scan.run(directory: directory, provider: p) }
                found = entries.count
                failed = entries.filter { $0.error != nil }.count
                if i >= warmup { samples.append(t) }
            }
            print("scan " + Timing.summary(samples, extra: "entries=\(found) errors=\(failed)"))
            if verbose { print("samples_ms=" + samples.map { String(format: "%.3f", $0 * 1000) }.joined(separator: ",")) }
        }
    }
}
