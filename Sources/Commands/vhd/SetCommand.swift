import ArgumentParser
import VHD

/// `vhd set -n FILE -f hidden|marker -v N`.
struct SetCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "set", abstract: "Set the hidden flag or the marker.")
    @Option(name: .customShort("n"), help: "Image.") var name: String
    @Option(name: .customShort("f"), help: "Field: hidden or marker.") var field: String
    @Option(name: .customShort("v"), help: "Value 0-255 (hidden: 0 or 1).") var value: UInt8

    func run() throws {
        try VHDCommand.guarded {
            let image = try VHDImage(store: try FileStore(path: name, writable: true), path: name, writable: true)
            switch field {
            case "hidden":
                guard value <= 1 else { throw VHDError.invalidArgument("hidden must be 0 or 1") }
                try image.updateFooter { $0.hidden = value }
            case "marker": try image.setMarker(value)
            default: throw VHDError.invalidArgument("unknown field \(field) (hidden, marker)")
            }
            try image.store.sync()
        }
    }
}
