import ArgumentParser
import VHD

/// `vhd query -n FILE [-v] [-s] [-p] [-f] [-m] [-d] [-a] [-S] [-u] [-b]`, one line per flag in
/// vhd-util's fixed order.
struct QueryCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "query", abstract: "Print facts about an image.")
    @Option(name: .customShort("n"), help: "Image.") var name: String
    @Flag(name: .customShort("v"), help: "Virtual size in MiB.") var virtualSize = false
    @Flag(name: .customShort("s"), help: "Physical size in bytes.") var physicalSize = false
    @Flag(name: .customShort("p"), help: "Parent path.") var parent = false
    @Flag(name: .customShort("f"), help: "Hidden flag.") var hidden = false
    @Flag(name: .customShort("m"), help: "Marker.") var marker = false
    @Flag(name: .customShort("d"), help: "Chain depth.") var depth = false
    @Flag(name: .customShort("a"), help: "Allocated block count.") var allocated = false
    @Flag(name: .customShort("S"), help: "Largest fast-resize size in MiB.") var maxSize = false
    @Flag(name: .customShort("u"), help: "Print the parent as stored, unresolved.") var unresolved = false
    @Flag(name: .customShort("b"), help: "Use the backup footer.") var backup = false
    @Flag(name: .customLong("debug"), help: "Accepted for compatibility.") var debug = false
    @Flag(help: "Print everything as JSON.") var json = false

    func run() throws {
        try VHDCommand.guarded {
            let p = FileStoreProvider()
            let info = try ImageInfo.of(path: name, provider: p, withDepth: depth || json)
            if json { return Output.json(info) }
            if virtualSize { Output.line("\(info.virtualSize >> 20)") }
            if physicalSize { Output.line("\(info.physicalSize)") }
            if parent {
                if info.parentUUID == nil { Output.line("\(name) has no parent") } else if unresolved {
                    Output.line(info.parentName ?? "")
                } else if let pp = info.parentPath { Output.line(p.canonical(pp)) } else {
                    throw VHDError.parentNotFound(path: name, tried: [info.parentName ?? ""])
                }
            }
            if hidden { Output.line("hidden: \(info.hidden ? 1 : 0)") }
            if marker { Output.line("marker: \(info.marker)") }
            if depth { Output.line("chain depth: \(info.depth ?? 1)") }
            if allocated { Output.line("\(info.allocatedBlocks)") }
            if maxSize { Output.line("\(info.fastResizeLimit >> 20)") }
        }
    }
}
