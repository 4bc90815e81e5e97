import ArgumentParser
import VHD

/// `vhd snapshot -n CHILD -p PARENT [-m] [-S MB] [-e] [-l DEPTH]`.
struct SnapshotCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "snapshot", abstract: "Create a differencing child of PARENT.")
    @Option(name: .customShort("n"), help: "Child to create.") var name: String
    @Option(name: .customShort("p"), help: "Parent image.") var parent: String
    @Flag(name: .customShort("m"), help: "The parent is a raw file.") var raw = false
    @Option(name: .customShort("S"), help: "BAT capacity in MiB for fast resize.") var maxSize: UInt64 = 0
    @Flag(name: .customShort("e"), help: "Link to PARENT even if it is an empty differencing disk.") var linkEmpty = false
    @Option(name: .customShort("l"), help: "Refuse if the chain would be deeper than this.") var limit: Int = 0
    @Option(name: .customShort("s"), help: "Virtual size in MiB (never below the parent's).") var size: UInt64 = 0
    @Flag(help: "Print the result as JSON.") var json = false

    func run() throws {
        try VHDCommand.guarded {
            var o = Snapshot.Options()
            o.rawParent = raw
            o.linkEmptyParent = linkEmpty
            o.fastResizeLimit = try MiB.bytes(maxSize)
            o.depthLimit = limit
            o.size = try MiB.bytes(size)
            let p = FileStoreProvider()
            try Snapshot.create(child: name, parent: parent, provider: p, options: o)
            if json { Output.json(try ImageInfo.of(path: name, provider: p)) }
        }
    }
}
