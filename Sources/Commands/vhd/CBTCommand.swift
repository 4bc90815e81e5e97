import ArgumentParser
import CBT
import Foundation
import VHD

/// `vhd cbt`: blktap's `cbt-util` over a CBT log file (create, get, set) plus `show` (the header
/// and the changed ranges) and `check` (exit status 0 only when the log is consistent).
struct CBTCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cbt", abstract: "Read and change changed-block-tracking logs (cbt-util compatible).",
        subcommands: [Create.self, Get.self, SetField.self, Show.self, Check.self])

    /// Opens log file `name`.
    static func open(_ name: String, writable: Bool) throws -> CBTLog {
        CBTLog(store: try FileStore(path: name, writable: writable))
    }

    /// Runs `body`, turning format and engine errors into messages and exit status 22.
    static func guarded(_ body: () throws -> Void) throws {
        do { try body() } catch let e as CBTFormatError {
            Output.error(e.description)
            throw ExitCode(22)
        }
    }

    /// `vhd cbt create -n LOG -s BYTES`.
    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a log for a disk of BYTES bytes (consistent flag 0, as cbt-util).")
        @Option(name: .customShort("n"), help: "Log file.") var name: String
        @Option(name: .customShort("s"), help: "Disk size in bytes.") var size: UInt64

        func run() throws {
            try VHDCommand.guarded {
                try CBTCommand.guarded {
                    let store = try FileStoreProvider().create(name)
                    try CBTLog.create(on: store, header: CBTLogHeader(consistent: false, size: size))
                }
            }
        }
    }

    /// `vhd cbt get -n LOG -p|-c|-f|-s|-b`: one field, as cbt-util prints it.
    struct Get: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print one field: parent, child, flag, size or the raw bitmap.")
        @Option(name: .customShort("n"), help: "Log file.") var name: String
        @Flag(name: .customShort("p"), help: "Parent log uuid.") var parent = false
        @Flag(name: .customShort("c"), help: "Child log uuid.") var child = false
        @Flag(name: .customShort("f"), help: "Consistency flag.") var flag = false
        @Flag(name: .customShort("s"), help: "Disk size in bytes.") var size = false
        @Flag(name: .customShort("b"), help: "The bitmap's bytes, raw, to stdout.") var bitmap = false

        func validate() throws {
            guard [parent, child, flag, size, bitmap].filter({ $0 }).count == 1 else {
                throw ValidationError("exactly one of -p, -c, -f, -s, -b")
            }
        }

        func run() throws {
            try VHDCommand.guarded {
                try CBTCommand.guarded {
                    let log = try CBTCommand.open(name, writable: false)
                    let h = try log.header()
                    if parent { Output.line(h.parent ?? CBTLogHeader.nullUUID) }
                    if child { Output.line(h.child ?? CBTLogHeader.nullUUID) }
                    if flag { Output.line(String(h.consistencyFlag)) }
                    if size { Output.line(String(h.size)) }
                    if bitmap { FileHandle.standardOutput.write(Data(try log.bitmap(h).bytes)) }
                }
            }
        }
    }

    /// `vhd cbt set -n LOG [-p UUID] [-c UUID] [-f 0|1] [-s BYTES]`.
    struct SetField: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "set", abstract: "Set the parent, child, consistency flag or (growing) size.")
        @Option(name: .customShort("n"), help: "Log file.") var name: String
        @Option(name: .customShort("p"), help: "Parent log uuid.") var parent: String?
        @Option(name: .customShort("c"), help: "Child log uuid.") var child: String?
        @Option(name: .customShort("f"), help: "Consistency flag.") var flag: Int32?
        @Option(name: .customShort("s"), help: "New disk size in bytes (not smaller).") var size: UInt64?

        func validate() throws {
            guard parent != nil || child != nil || flag != nil || size != nil else { throw ValidationError("nothing to set") }
            for u in [parent, child].compactMap({ $0 }) where UUID(uuidString: u) == nil { throw ValidationError("\(u) is not a uuid") }
        }

        func run() throws {
            try VHDCommand.guarded {
                try CBTCommand.guarded {
                    let log = try CBTCommand.open(name, writable: true)
                    if let size { try log.grow(toSize: size) }
                    var h = try log.header()
                    if let parent { h.parent = parent == CBTLogHeader.nullUUID ? nil : parent.lowercased() }
                    if let child { h.child = child == CBTLogHeader.nullUUID ? nil : child.lowercased() }
                    if let flag { h.consistencyFlag = flag }
                    try log.writeHeader(h)
                    try log.sync()
                }
            }
        }
    }

    /// `vhd cbt show -n LOG [--json]`: the header and the changed ranges.
    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the header and the changed byte ranges.")
        @Option(name: .customShort("n"), help: "Log file.") var name: String
        @Flag(help: "JSON output.") var json = false

        /// The JSON form.
        struct Report: Encodable {
            var parent: String
            var child: String
            var consistent: Bool
            var size: UInt64
            var changedBlocks: Int
            var changedRanges: [[UInt64]]
        }

        func run() throws {
            try VHDCommand.guarded {
                try CBTCommand.guarded {
                    let log = try CBTCommand.open(name, writable: false)
                    let h = try log.header()
                    let bits = try log.bitmap(h)
                    let ranges = bits.changedRanges(size: h.size)
                    if json {
                        Output.json(Report(parent: h.parent ?? CBTLogHeader.nullUUID, child: h.child ?? CBTLogHeader.nullUUID,
                                           consistent: h.consistent, size: h.size, changedBlocks: bits.changedBlockCount,
                                           changedRanges: ranges.map { [$0.lowerBound, $0.upperBound - $0.lowerBound] }))
                        return
                    }
                    Output.line("parent: \(h.parent ?? CBTLogHeader.nullUUID)")
                    Output.line("child: \(h.child ?? CBTLogHeader.nullUUID)")
                    Output.line("consistent: \(h.consistencyFlag)")
                    Output.line("size: \(h.size)")
                    Output.line("changed blocks: \(bits.changedBlockCount) of \(CBTBitmap.blockCount(forSize: h.size)) (64 KiB)")
                    for r in ranges { Output.line("\(r.lowerBound) \(r.upperBound - r.lowerBound)") }
                }
            }
        }
    }

    /// `vhd cbt check -n LOG`: exit 0 when consistent, 1 when not (a full backup is needed).
    struct Check: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Exit 0 if the log is consistent, 1 if not.")
        @Option(name: .customShort("n"), help: "Log file.") var name: String

        func run() throws {
            try VHDCommand.guarded {
                try CBTCommand.guarded {
                    let h = try CBTCommand.open(name, writable: false).header()
                    Output.line(h.consistent ? "consistent" : "inconsistent")
                    if !h.consistent { throw ExitCode(1) }
                }
            }
        }
    }
}
