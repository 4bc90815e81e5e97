import ArgumentParser
import Foundation
import VHD

/// `vhd scan -f -m 'DIR/*.vhd' [-p] [-M]`: one line per image, vhd-util's format.
struct ScanCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "scan", abstract: "Report every VHD matching a pattern.")
    @Flag(name: .customShort("f"), help: "Fast scan (always: headers only).") var fast = false
    @Option(name: .customShort("m"), help: "Pattern: a folder and a glob of names, e.g. '/sr/*.vhd'.") var pattern: String
    @Flag(name: .customShort("p"), help: "Print as a tree, children indented under parents.") var tree = false
    @Flag(name: .customShort("M"), help: "Add the marker.") var markers = false
    @Flag(help: "Print entries as JSON.") var json = false

    func run() throws {
        try VHDCommand.guarded {
            let dir = StorePath.directory(of: pattern)
            let glob = StorePath.basename(pattern)
            let p = FileStoreProvider()
            let names = try p.list(dir).filter { fnmatch(glob, $0, 0) == 0 }
            let entries = names.map { Scan.entry(name: $0, path: StorePath.join(dir, $0), provider: p) }
            if json { return Output.json(entries) }
            func line(_ e: Scan.Entry) -> String {
                let path = StorePath.join(dir, e.name)
                if let err = e.error { return "vhd=\(path) scan-error=22 error-message='\(err)'" }
                var s = "vhd=\(path) capacity=\(e.virtualSize ?? 0) size=\(e.physicalSize ?? 0) hidden=\(e.hidden == true ? 1 : 0) parent=\(e.parentName.map { $0.isEmpty ? "none" : $0 } ?? "none")"
                if markers { s += " marker=\(e.marker ?? 0)" }
                return s
            }
            guard tree else { return entries.forEach { Output.line(line($0)) } }
            let byName = Set(entries.map(\.name))
            func printTree(_ e: Scan.Entry, _ depth: Int) {
                Output.line(String(repeating: "   ", count: depth) + line(e))
                for c in entries where c.parentName == e.name { printTree(c, depth + 1) }
            }
            for e in entries where e.parentName == nil || !byName.contains(e.parentName!) { printTree(e, 0) }
        }
    }
}
