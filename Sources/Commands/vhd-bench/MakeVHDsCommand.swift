import ArgumentParser
import Foundation
import VHD

/// `vhd-bench make-vhds DIR --count 10000 --size-mb 8192`: a folder of empty dynamic VHDs
/// (made with `Create.dynamic`) for scan timings.
struct MakeVHDsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "make-vhds", abstract: "Create many small dynamic VHDs in a folder.")
    @Argument(help: "Existing folder.") var directory: String
    @Option(help: "Number of VHDs.") var count: Int = 10_000
    @Option(help: "Virtual size of each, in MiB.") var sizeMb: UInt64 = 8192

    func run() throws {
        try VHDBench.guarded {
            let p = FileStoreProvider()
            let seconds = try Timing.seconds {
                for i in 0..<count {
                    let name = "vhd-" + String(repeating: "0", count: max(0, 5 - String(i).count)) + String(i) + ".vhd"
                    try Create.dynamic(at: StorePath.join(directory, name), size: sizeMb << 20, provider: p)
                }
            }
            print("created \(count) VHDs of \(sizeMb) MiB in \(String(format: "%.2f", seconds)) s: \(directory)")
        }
    }
}
