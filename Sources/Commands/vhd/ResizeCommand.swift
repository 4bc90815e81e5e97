import ArgumentParser
import VHD

/// `vhd resize -n FILE -s MB (-f | -j JOURNAL)`.
struct ResizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "resize", abstract: "Grow an image (fixed images may shrink).")
    @Option(name: .customShort("n"), help: "Image.") var name: String
    @Option(name: .customShort("s"), help: "New virtual size in MiB.") var size: UInt64
    @Flag(name: .customShort("f"), help: "Fast: only within the BAT's capacity.") var fast = false
    @Option(name: .customShort("j"), help: "Journal file for a resize that moves metadata.") var journal: String?

    func validate() throws {
        guard fast || journal != nil else { throw ValidationError("either -f or -j JOURNAL is required") }
    }

    func run() throws {
        try VHDCommand.guarded {
            let files = FileStoreProvider()
            try Resize.run(path: name, size: try MiB.bytes(size), provider: files, fastOnly: fast,
                           journal: journal.map { StoreJournal(path: $0, provider: files) })
        }
    }
}
