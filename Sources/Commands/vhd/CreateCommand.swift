import ArgumentParser
import VHD

/// `vhd create -n FILE -s MB [-r] [-S MB]`.
struct CreateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "create", abstract: "Create a dynamic (or fixed) VHD.")
    @Option(name: .customShort("n"), help: "Image to create.") var name: String
    @Option(name: .customShort("s"), help: "Virtual size in MiB (rounded up to 2 MiB).") var size: UInt64
    @Flag(name: .customShort("r"), help: "Fixed (preallocated) image.") var fixed = false
    @Option(name: .customShort("S"), help: "BAT capacity in MiB for fast resize.") var maxSize: UInt64 = 0
    @Flag(help: "Print the result as JSON.") var json = false

    func run() throws {
        try VHDCommand.guarded {
            let p = FileStoreProvider()
            let uuid = fixed ? try Create.fixed(at: name, size: try MiB.bytes(size), provider: p)
                : try Create.dynamic(at: name, size: try MiB.bytes(size), fastResizeLimit: try MiB.bytes(maxSize), provider: p)
            if json { Output.json(try ImageInfo.of(path: name, provider: p)) } else if uuid.isNull { Output.line(name) }
        }
    }
}
