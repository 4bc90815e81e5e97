import ArgumentParser
import VHD

/// `vhd revert -n FILE -j JOURNAL`: finish an interrupted journaled resize.
///
/// blktap rolls the image back; SwiftSM's journal holds the new metadata, so it is replayed
/// forward. Either way the image is consistent afterwards.
struct RevertCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "revert", abstract: "Recover an image from its resize journal.")
    @Option(name: .customShort("n"), help: "Image.") var name: String
    @Option(name: .customShort("j"), help: "Journal file.") var journal: String

    func run() throws {
        try VHDCommand.guarded {
            let files = FileStoreProvider()
            let replayed = try Resize.recover(path: name, journal: StoreJournal(path: journal, provider: files), provider: files)
            Output.line(replayed ? "journal replayed" : "no journal")
        }
    }
}
