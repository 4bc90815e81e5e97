import Foundation
import Testing

/// The outcome of running a program.
struct CommandResult {
    let status: Int32
    let stdout: String
    let stderr: String
    var ok: Bool { status == 0 }
}

/// Runs real client programs (qemu-img, nbdinfo, nbdcopy, fio, python3 with libnbd).
enum Command {
    /// The absolute path of `tool` in PATH (or /usr/bin, /usr/sbin).
    static func which(_ tool: String) -> String? {
        let dirs = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init) + ["/usr/bin", "/usr/sbin"]
        return dirs.map { $0 + "/" + tool }.first { access($0, X_OK) == 0 }
    }

    /// Runs `tool` with `arguments`, output captured through files; kills it after `timeout` seconds.
    @discardableResult
    static func run(_ tool: String, _ arguments: [String], timeout: Double = 60, environment: [String: String] = [:]) throws -> CommandResult {
        let exe = try #require(tool.hasPrefix("/") ? tool : which(tool), "\(tool) is not installed (scripts/install-deps.sh)")
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = arguments
        p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("cmd-\(UUID().uuidString).out")
        let err = FileManager.default.temporaryDirectory.appendingPathComponent("cmd-\(UUID().uuidString).err")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        defer { try? FileManager.default.removeItem(at: out); try? FileManager.default.removeItem(at: err) }
        let outHandle = try FileHandle(forWritingTo: out)
        let errHandle = try FileHandle(forWritingTo: err)
        p.standardOutput = outHandle
        p.standardError = errHandle
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { usleep(5_000) }
        if p.isRunning { p.terminate(); p.waitUntilExit() }
        p.waitUntilExit()
        try? outHandle.close()
        try? errHandle.close()
        return CommandResult(status: p.terminationStatus,
                             stdout: (try? String(contentsOf: out, encoding: .utf8)) ?? "",
                             stderr: (try? String(contentsOf: err, encoding: .utf8)) ?? "")
    }

    /// Runs and expects success, returning stdout.
    @discardableResult
    static func check(_ tool: String, _ arguments: [String], timeout: Double = 60, sourceLocation: SourceLocation = #_sourceLocation) throws -> String {
        let r = try run(tool, arguments, timeout: timeout)
        #expect(r.ok, "\(tool) \(arguments.joined(separator: " ")) failed (\(r.status)): \(r.stderr)", sourceLocation: sourceLocation)
        return r.stdout
    }

    /// The Debian python3 that has the libnbd bindings (`python3-libnbd`).
    static var python: String { "/usr/bin/python3" }
}
