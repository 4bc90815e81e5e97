import ArgumentParser
import VHD

/// `vhd check -n FILE [-i] [-I] [-t] [-p] [-B]`: prints `FILE is valid` or each problem; exit 22.
struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "check", abstract: "Verify an image's metadata (and its parents').")
    @Option(name: .customShort("n"), help: "Image.") var name: String
    @Flag(name: .customShort("i"), help: "Tolerate a missing primary footer.") var ignoreFooter = false
    @Flag(name: .customShort("I"), help: "Do not compare parent uuids.") var ignoreParentUUID = false
    @Flag(name: .customShort("t"), help: "Do not check timestamps.") var ignoreTimestamps = false
    @Flag(name: .customShort("p"), help: "Check every ancestor too.") var parents = false
    @Flag(name: .customShort("B"), help: "Skip the block overlap check.") var skipOverlap = false
    @Flag(help: "Print the reports as JSON.") var json = false

    struct JSONReport: Encodable { let path: String; let valid: Bool; let problems: [String] }

    func run() throws {
        var o = Check.Options()
        o.ignoreMissingPrimaryFooter = ignoreFooter
        o.ignoreParentUUID = ignoreParentUUID
        o.ignoreTimestamps = ignoreTimestamps
        o.parents = parents
        o.skipOverlap = skipOverlap
        let reports = Check.run(path: name, provider: FileStoreProvider(), options: o)
        if json {
            Output.json(reports.map { JSONReport(path: $0.path, valid: $0.valid, problems: $0.problems) })
        } else {
            for r in reports {
                if r.valid { Output.line("\(r.path) is valid") } else { r.problems.forEach { Output.line("\(r.path): \($0)") } }
            }
        }
        if reports.contains(where: { !$0.valid }) { throw ExitCode(22) }
    }
}
