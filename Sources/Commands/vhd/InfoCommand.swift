import ArgumentParser
import VHD

/// `vhd info FILE`: every image of the chain, leaf first, in plain words or JSON.
struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "info", abstract: "Describe an image and its chain.")
    @Argument(help: "Image.") var name: String
    @Flag(help: "Print as JSON.") var json = false

    func run() throws {
        try VHDCommand.guarded {
            let p = FileStoreProvider()
            let chain = try VHDChain(path: name, provider: p)
            var infos = try chain.images.map { try ImageInfo.of(path: $0.path, provider: p) }
            for i in infos.indices { infos[i].depth = infos.count - i }
            if json { return Output.json(infos) }
            for (i, info) in infos.enumerated() {
                Output.line(String(repeating: "  ", count: i) + "\(info.path)")
                let ind = String(repeating: "  ", count: i) + "  "
                Output.line(ind + "uuid \(info.uuid), \(info.type), \(info.virtualSize) bytes virtual, \(info.physicalSize) bytes on disk")
                Output.line(ind + "\(info.allocatedBlocks)/\(info.blocks) blocks allocated, hidden \(info.hidden ? 1 : 0), creator \(info.creator)")
            }
            if let raw = chain.rawParentPath { Output.line(String(repeating: "  ", count: infos.count) + "\(raw) (raw parent)") }
        }
    }
}
