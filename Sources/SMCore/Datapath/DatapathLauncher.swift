import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Starts and stops `swiftsm-datapath` processes, detached from the short-lived `smdriver`: a new
/// session (posix_spawn with POSIX_SPAWN_SETSID), stdin from /dev/null, stdout and stderr to the
/// datapath's log, no other descriptor inherited (so no SR lock outlives the call).
public enum DatapathLauncher {
    /// The executable's name.
    public static let executableName = "swiftsm-datapath"
    /// `SWIFTSM_DATAPATH`, else `swiftsm-datapath` next to this program, else in PATH.
    public static func executable() -> String? {
        let env = ProcessInfo.processInfo.environment
        if let e = env["SWIFTSM_DATAPATH"], access(e, X_OK) == 0 { return e }
        if let me = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") {
            let sibling = (me as NSString).deletingLastPathComponent + "/" + executableName
            if access(sibling, X_OK) == 0 { return sibling }
        }
        for dir in (env["PATH"] ?? "").split(separator: ":") {
            let p = dir + "/" + executableName
            if access(p, X_OK) == 0 { return p }
        }
        return nil
    }

    /// Spawns `executable` with `configuration`'s arguments, detached, output to the datapath's log; returns the pid.
    public static func spawn(_ configuration: DatapathConfiguration, executable: String) throws -> pid_t {
        do {
            return try DetachedProcess.spawn(executable, arguments: configuration.arguments, logFile: configuration.directory.logFile,
                                             directory: configuration.directory.path)
        } catch let StorageError.system(_, _, code) {
            throw DatapathError.startFailed("posix_spawn \(executable): \(String(cString: strerror(code)))")
        }
    }

    /// Whether `pid` is a live `swiftsm-datapath` (reaps it first if it is a dead child of ours),
    /// serving `directory` when one is given (a recycled pid is then not mistaken for ours): a
    /// datapath works in its folder (started there; a live migration's switch moves it), so its
    /// working directory says which VDI it serves.
    public static func isRunning(_ pid: pid_t, directory: DatapathDirectory? = nil) -> Bool {
        guard pid > 0 else { return false }
        var status: Int32 = 0
        if waitpid(pid, &status, WNOHANG) == pid { return false }
        guard kill(pid, 0) == 0 || errno == EPERM else { return false }
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        if fields.first == "Z" || fields.first == "X" { return false }
        guard let cmdline = try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline")) else { return false }
        let argv = cmdline.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
        guard let argv0 = argv.first, argv0.hasSuffix(executableName) else { return false }
        if let d = directory {
            guard let home = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/cwd"),
                  home == URL(fileURLWithPath: d.path).resolvingSymlinksInPath().path else { return false }
        }
        return true
    }

    /// Waits up to `timeout` seconds for `pid` (serving `directory`, when given) to end; whether it did.
    public static func waitForExit(_ pid: pid_t, directory: DatapathDirectory? = nil, timeout: Double) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while isRunning(pid, directory: directory) {
            if Date() > deadline { return false }
            usleep(10_000)
        }
        return true
    }

    /// Waits until the control socket answers, failing early if the process dies.
    public static func waitUntilReady(_ pid: pid_t, directory: DatapathDirectory, timeout: Double) throws {
        let deadline = Date().addingTimeInterval(timeout)
        let client = DatapathControlClient(socketPath: directory.controlSocket, timeout: 2)
        while true {
            if access(directory.controlSocket, F_OK) == 0, client.ping() { return }
            var status: Int32 = 0
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid {
                let how = status & 0x7f == 0 ? "exited with status \((status >> 8) & 0xff)" : "was killed by signal \(status & 0x7f)"
                throw DatapathError.startFailed("process \(pid) \(how): \(logTail(directory))")
            }
            guard r == 0 || isRunning(pid, directory: directory) else { throw DatapathError.startFailed("process \(pid) is gone: \(logTail(directory))") }
            guard Date() < deadline else { throw DatapathError.startFailed("not ready after \(Int(timeout)) s: \(logTail(directory))") }
            usleep(10_000)
        }
    }

    /// The last lines of the datapath's log (for error messages).
    public static func logTail(_ directory: DatapathDirectory, lines: Int = 3) -> String {
        guard let text = try? String(contentsOfFile: directory.logFile, encoding: .utf8) else { return "no log" }
        return text.split(separator: "\n").suffix(lines).joined(separator: " | ")
    }
}
