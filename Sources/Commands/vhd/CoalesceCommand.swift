import ArgumentParser
import VHD

/// `vhd coalesce -n CHILD`: merge CHILD into its parent; prints `Coalesced N sectors`.
struct CoalesceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "coalesce", abstract: "Merge a differencing image into its parent.")
    @Option(name: .customShort("n"), help: "Child image.") var name: String
    @Flag(name: .customShort("s"), help: "Accepted for compatibility (new parent blocks are never zero-filled).") var sparse = false
    @Flag(help: "Print the result as JSON.") var json = false

    func run() throws {
        try VHDCommand.guarded {
            let r = try Coalesce.run(child: name, provider: FileStoreProvider(), progress: json ? nil : Output.progress("coalesce"))
            if json {
                Output.json(["sectors": "\(r.sectors)", "parent": r.parentPath])
            } else {
                Output.line("Coalesced \(r.sectors) sectors")
            }
        }
    }
}
