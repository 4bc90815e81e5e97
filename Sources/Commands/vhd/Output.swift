import Foundation
import VHD

/// Printing for the `vhd` tool: plain lines, JSON, errors, and a progress bar on terminals.
enum Output {
    /// Prints a line to stdout.
    static func line(_ s: String) { print(s) }

    /// Prints an error to stderr.
    static func error(_ s: String) { FileHandle.standardError.write(Data(("vhd: " + s + "\n").utf8)) }

    /// Prints an encodable value as pretty JSON with sorted keys.
    static func json<T: Encodable>(_ value: T) {
        let enc = JSONEncoder()
        enc.outputFormatting = [.prettyPrinted, .sortedKeys]
        if let d = try? enc.encode(value) { print(String(decoding: d, as: UTF8.self)) }
    }

    /// A progress callback drawing a bar on stdout when it is a terminal, else nil.
    static func progress(_ label: String) -> ((Int, Int) -> Void)? {
        guard isatty(STDOUT_FILENO) != 0 else { return nil }
        var last = -1
        return { done, total in
            let pct = total == 0 ? 100 : done * 100 / total
            guard pct != last else { return }
            last = pct
            let width = 40
            let filled = pct * width / 100
            let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
            print("\r\(label) [\(bar)] \(pct)%", terminator: done == total ? "\n" : "")
            fflush(nil)
        }
    }
}

/// Sizes in MiB as vhd-util takes them.
enum MiB {
    /// Bytes of `mb` MiB.
    static func bytes(_ mb: UInt64) throws -> UInt64 {
        guard mb <= UInt64.max >> 20 else { throw VHDError.invalidArgument("size \(mb) MiB is too large") }
        return mb << 20
    }
}
