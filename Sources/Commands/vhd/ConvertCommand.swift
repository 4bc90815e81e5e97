import ArgumentParser
import VHD

/// `vhd convert SRC DST`: raw to VHD (dynamic, or fixed with --fixed), or a VHD chain to a
/// sparse raw file; the direction follows the source unless --to says otherwise.
struct ConvertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "convert", abstract: "Convert raw to VHD or VHD to raw (sparse).")
    @Argument(help: "Source image.") var source: String
    @Argument(help: "Destination (must not exist).") var destination: String
    @Option(help: "Destination format: vhd or raw (default: the other one).") var to: String?
    @Flag(help: "Make a fixed VHD.") var fixed = false
    @Flag(help: "Print the result as JSON.") var json = false

    func run() throws {
        try VHDCommand.guarded {
            let p = FileStoreProvider()
            let sourceIsVHD = (try? VHDImage(store: try FileStore(path: source, writable: false), path: source,
                                             writable: false, loadBAT: false)) != nil
            let target = to ?? (sourceIsVHD ? "raw" : "vhd")
            let bar = json ? nil : Output.progress("convert")
            let r: Convert.Result
            switch target {
            case "raw": r = try Convert.vhdToRaw(source: source, destination: destination, provider: p, progress: bar)
            case "vhd": r = try Convert.rawToVHD(source: source, destination: destination, provider: p, fixed: fixed, progress: bar)
            default: throw VHDError.invalidArgument("--to must be vhd or raw")
            }
            if json { Output.json(["virtualSize": r.virtualSize, "blocksWritten": UInt64(r.blocksWritten), "blocks": UInt64(r.blocks)]) }
        }
    }
}
