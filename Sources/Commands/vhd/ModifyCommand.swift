import ArgumentParser
import VHD

/// `vhd modify -n FILE -p PARENT [-m]`: point a differencing image at a new parent.
struct ModifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "modify", abstract: "Reparent a differencing image.")
    @Option(name: .customShort("n"), help: "Image.") var name: String
    @Option(name: .customShort("p"), help: "New parent.") var parent: String
    @Flag(name: .customShort("m"), help: "The new parent is a raw file.") var raw = false

    func run() throws {
        try VHDCommand.guarded { try Relink.run(child: name, newParent: parent, raw: raw, provider: FileStoreProvider()) }
    }
}
