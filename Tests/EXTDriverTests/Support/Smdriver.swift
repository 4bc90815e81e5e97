import Foundation
#if canImport(Glibc)
import Glibc
#endif
import SMCore

/// What one run of the `smdriver` executable produced.
struct SmdriverResult: Sendable, CustomStringConvertible {
    /// The arguments after the program name.
    var arguments: [String]
    /// Everything written on stdout.
    var stdout: String
    /// Everything written on stderr.
    var stderr: String
    /// The exit status, when the process exited.
    var exitStatus: Int32?
    /// The signal that ended the process, when it was killed.
    var signal: Int32?
    /// Whether the run was killed for taking longer than its timeout.
    var timedOut: Bool
    /// Wall time of the run, in seconds.
    var seconds: Double

    /// stdout parsed with the project's decoder as one `<methodResponse>`.
    func response() throws -> XMLRPCMethodResponse {
        try XMLRPCDecoder().decodeMethodResponse(stdout)
    }

    /// The fault of the response, nil for a success or unparsable output.
    var fault: XMLRPCFault? { (try? response())?.faultValue }

    /// The success value of the response, nil for a fault or unparsable output.
    var value: XMLRPCValue? { (try? response())?.value }

    /// A short description for failure messages.
    var description: String {
        let command = arguments.last.map { String($0.prefix(120)) } ?? "-"
        return "smdriver \(command)… → status \(exitStatus.map(String.init) ?? "-") signal \(signal.map(String.init) ?? "-")"
            + (timedOut ? " TIMED OUT" : "") + "\nstdout: \(stdout.prefix(2000))\nstderr: \(stderr.prefix(2000))"
    }
}

/// Runs the built `smdriver` executable as xapi does: the request document as the only
/// argument, nothing on stdin, a minimal environment (`PATH`, `ORIGINATOR=SM`) plus the
/// SwiftSM variables (`SWIFTSM_RUN_DIR`, `SWIFTSM_XAPI_URL`, `SWIFTSM_FAULT`).
enum Smdriver {
    /// Why the executable could not be run.
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// The executable: `$SMDRIVER`, else `smdriver` next to the test bundle (the build products folder).
    static let executable: String? = {
        let env = ProcessInfo.processInfo.environment
        if let explicit = env["SMDRIVER"], !explicit.isEmpty { return explicit }
        var candidates: [URL] = []
        if let argv0 = CommandLine.arguments.first {
            let url = URL(fileURLWithPath: argv0).standardizedFileURL
            candidates.append(url.deletingLastPathComponent())
            // macOS: …/Foo.xctest/Contents/MacOS/Foo → the products folder holds the bundle.
            candidates.append(url.deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().deletingLastPathComponent())
        }
        candidates.append(Bundle.main.bundleURL)
        candidates.append(Bundle.main.bundleURL.deletingLastPathComponent())
        if let exe = Bundle.main.executableURL { candidates.append(exe.deletingLastPathComponent()) }
        for folder in candidates {
            let path = folder.appendingPathComponent("smdriver").path
            if access(path, X_OK) == 0 { return path }
        }
        return nil
    }()

    /// The executable or a clear failure saying how to get one.
    static func requireExecutable() throws -> String {
        guard let path = executable else {
            throw Failure(description: "smdriver executable not found next to the test bundle (\(CommandLine.arguments.first ?? "?")); "
                + "build it first (swift build -c release --scratch-path …) or set SMDRIVER=/path/to/smdriver")
        }
        return path
    }

    /// Where stdout/stderr of each run are collected before being read back (removed after each run).
    private static let ioPrefix = NSTemporaryDirectory() + "swiftsm-e2e-\(getpid())-"

    private static let counter = Counter()

    /// Runs `smdriver --driver ext <arguments…>` with `environment` added to the minimal one,
    /// killing it after `timeout` seconds.
    static func run(_ arguments: [String], driver: String = "ext", environment: [String: String],
                    timeout: Double = 60) throws -> SmdriverResult {
        let exe = try requireExecutable()
        let argv = [exe, "--driver", driver] + arguments
        var env = ["PATH": "/sbin:/usr/sbin:/bin:/usr/bin", "ORIGINATOR": "SM"]
        env.merge(environment) { $1 }
        let n = counter.next()
        let outPath = ioPrefix + "\(n).out", errPath = ioPrefix + "\(n).err"
        defer { unlink(outPath); unlink(errPath) }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, errPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)

        let cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        let cEnv: [UnsafeMutablePointer<CChar>?] = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for p in cArgs + cEnv { free(p) } }

        let start = Date()
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, exe, &actions, nil, cArgs, cEnv)
        guard rc == 0 else { throw Failure(description: "posix_spawn \(exe): \(String(cString: strerror(rc)))") }

        var status: Int32 = 0
        var timedOut = false
        var pause: useconds_t = 200
        while true {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid { break }
            if r < 0 && errno != EINTR { throw Failure(description: "waitpid: \(String(cString: strerror(errno)))") }
            if Date().timeIntervalSince(start) > timeout {
                timedOut = true
                kill(pid, SIGKILL)
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                break
            }
            usleep(pause)
            pause = min(pause * 2, 5_000)
        }
        let seconds = Date().timeIntervalSince(start)
        let termSignal = status & 0x7f
        let out = (FileManager.default.contents(atPath: outPath)).map { String(decoding: $0, as: UTF8.self) } ?? ""
        let err = (FileManager.default.contents(atPath: errPath)).map { String(decoding: $0, as: UTF8.self) } ?? ""
        return SmdriverResult(arguments: arguments, stdout: out, stderr: err,
                              exitStatus: termSignal == 0 ? (status >> 8) & 0xff : nil,
                              signal: termSignal == 0 ? nil : termSignal, timedOut: timedOut, seconds: seconds)
    }

    /// A thread-safe counter for unique file names.
    private final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var value = 0
        func next() -> Int { lock.withLock { value += 1; return value } }
    }
}
