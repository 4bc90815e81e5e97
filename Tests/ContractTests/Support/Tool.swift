import Foundation

/// Runs system tools and clients for the contract suite (losetup, mkfs.ext4, mount, qemu-img,
/// nbdcopy, python3), output captured through files.
enum Tool {
    /// The outcome of one run.
    struct Result {
        let status: Int32
        let stdout: String
        let stderr: String
        var ok: Bool { status == 0 }
    }

    /// A failed run where success was needed.
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// The absolute path of `tool` in PATH, /usr/bin, /usr/sbin or /sbin.
    static func which(_ tool: String) -> String? {
        if tool.hasPrefix("/") { return access(tool, X_OK) == 0 ? tool : nil }
        let dirs = (ProcessInfo.processInfo.environment["PATH"] ?? "").split(separator: ":").map(String.init)
            + ["/usr/bin", "/usr/sbin", "/sbin", "/bin"]
        return dirs.map { $0 + "/" + tool }.first { access($0, X_OK) == 0 }
    }

    /// Runs `tool`, killing it after `timeout` seconds.
    static func run(_ tool: String, _ arguments: [String], timeout: Double = 120) throws -> Result {
        guard let exe = which(tool) else { throw Failure(description: "\(tool) is not installed") }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: exe)
        p.arguments = arguments
        let base = NSTemporaryDirectory() + "tool-\(UUID().uuidString)"
        _ = FileManager.default.createFile(atPath: base + ".out", contents: nil)
        _ = FileManager.default.createFile(atPath: base + ".err", contents: nil)
        defer { unlink(base + ".out"); unlink(base + ".err") }
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: base + ".out"))
        let err = try FileHandle(forWritingTo: URL(fileURLWithPath: base + ".err"))
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let deadline = Date().addingTimeInterval(timeout)
        while p.isRunning && Date() < deadline { usleep(5_000) }
        if p.isRunning { p.terminate() }
        p.waitUntilExit()
        try? out.close()
        try? err.close()
        return Result(status: p.terminationStatus,
                      stdout: (try? String(contentsOfFile: base + ".out", encoding: .utf8)) ?? "",
                      stderr: (try? String(contentsOfFile: base + ".err", encoding: .utf8)) ?? "")
    }

    /// Runs `tool` and requires success; returns stdout.
    @discardableResult
    static func check(_ tool: String, _ arguments: [String], timeout: Double = 120) throws -> String {
        let r = try run(tool, arguments, timeout: timeout)
        guard r.ok else { throw Failure(description: "\(tool) \(arguments.joined(separator: " ")) failed (\(r.status)): \(r.stderr)") }
        return r.stdout
    }
}
