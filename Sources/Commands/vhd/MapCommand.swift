import ArgumentParser
import VHD

/// `vhd map FILE`: allocated and unallocated runs of the virtual disk through the chain.
struct MapCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "map", abstract: "Print the allocation map of the chain.")
    @Argument(help: "Image.") var name: String
    @Flag(help: "Print as JSON.") var json = false

    func run() throws {
        try VHDCommand.guarded {
            let extents = try AllocationMap.extents(try VHDChain(path: name, provider: FileStoreProvider()))
            if json { return Output.json(extents) }
            Output.line("\(pad("offset")) \(pad("length")) state")
            for e in extents { Output.line("\(pad(e.offset)) \(pad(e.length)) \(e.allocated ? "data" : "hole")") }
        }
    }

    private func pad(_ v: some CustomStringConvertible) -> String {
        let s = v.description
        return s + String(repeating: " ", count: max(0, 16 - s.count))
    }
}
