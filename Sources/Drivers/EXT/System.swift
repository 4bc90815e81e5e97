import Foundation

/// The few system tools the EXT driver runs (mkfs, mount, blkid), with their output captured.
enum System {
    /// A tool that failed.
    struct Failure: Error, CustomStringConvertible {
        let command: String
        let status: Int32
        let output: String
        var description: String { "Command \(command) failed (\(status)): \(output.trimmingCharacters(in: .whitespacesAndNewlines))" }
    }

    /// Runs `tool args` and returns its stdout; throws on a non-zero exit.
    @discardableResult
    static func run(_ tool: String, _ args: [String]) throws -> String {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: tool)
        p.arguments = args
        let out = Pipe()
        p.standardOutput = out
        p.standardError = out
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard p.terminationStatus == 0 else { throw Failure(command: ([tool] + args).joined(separator: " "), status: p.terminationStatus, output: text) }
        return text
    }

    /// Whether `blkid -p` finds a filesystem or partition table signature on `dev`.
    static func hasFilesystem(_ dev: String) throws -> Bool {
        (try? run("/sbin/blkid", ["-p", dev])) != nil
    }

    /// Whether `dev` is the device mounted at `/` (or a partition of it).
    static func isRootDevice(_ dev: String) throws -> Bool {
        guard let mounts = try? String(contentsOfFile: "/proc/mounts", encoding: .utf8) else { return false }
        let real = URL(fileURLWithPath: dev).resolvingSymlinksInPath().path
        for line in mounts.split(separator: "\n") {
            let f = line.split(separator: " ")
            guard f.count > 2, f[1] == "/" else { continue }
            let rootDev = URL(fileURLWithPath: String(f[0])).resolvingSymlinksInPath().path
            if rootDev == real || rootDev.hasPrefix(real) { return true }
        }
        return false
    }

    /// Where block device `dev` (symlinks resolved) is mounted, if anywhere.
    static func mountPoint(of dev: String) -> String? {
        guard let mounts = try? String(contentsOfFile: "/proc/mounts", encoding: .utf8) else { return nil }
        let real = URL(fileURLWithPath: dev).resolvingSymlinksInPath().path
        for line in mounts.split(separator: "\n") {
            let f = line.split(separator: " ")
            guard f.count > 2, f[0].hasPrefix("/") else { continue }
            if URL(fileURLWithPath: String(f[0])).resolvingSymlinksInPath().path == real {
                return String(f[1]).replacingOccurrences(of: "\\040", with: " ")
            }
        }
        return nil
    }

    /// Whether something is mounted at `path`.
    static func isMounted(_ path: String) -> Bool {
        guard let mounts = try? String(contentsOfFile: "/proc/mounts", encoding: .utf8) else { return false }
        return mounts.split(separator: "\n").contains { $0.split(separator: " ").dropFirst().first.map(String.init) == path }
    }
}
