import ArgumentParser
import VHD

/// `vhd repair -n FILE [-b]`: rewrite the footers (from the backup with -b) and the batmap.
struct RepairCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "repair", abstract: "Restore footers and batmap of a damaged image.")
    @Option(name: .customShort("n"), help: "Image.") var name: String
    @Flag(name: .customShort("b"), help: "Use the backup footer at offset 0.") var backup = false
    @Option(name: .customShort("j"), help: "Resize journal to replay, if one was left.") var journal: String?

    func run() throws {
        try VHDCommand.guarded {
            let r = try Repair.run(path: name, provider: FileStoreProvider(), useBackupFooter: backup, resizeJournal: journal)
            if r.resizeJournalReplayed { Output.line("replayed resize journal") }
            if r.footersRewritten { Output.line("footers rewritten from the \(r.footerSource.rawValue) copy") }
            if r.batmapBitsFixed > 0 { Output.line("batmap rebuilt (\(r.batmapBitsFixed) bits fixed)") }
        }
    }
}
