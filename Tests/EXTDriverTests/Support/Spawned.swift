import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A child process started with posix_spawn and reaped with waitpid (Foundation's `Process`
/// can wait forever for a child that has exited when the child leaves a daemon behind, as the
/// NFS test server's script does): stdin from /dev/null, stdout and stderr to a file.
struct Spawned {
    /// The child.
    let pid: pid_t

    /// Starts `argv` (`argv[0]` an absolute path) with its output appended to `output`, with
    /// `environment` added to this process's.
    init(_ argv: [String], output: String, environment: [String: String] = [:]) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_APPEND, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let cArgs: [UnsafeMutablePointer<CChar>?] = argv.map { strdup($0) } + [nil]
        defer { for p in cArgs { free(p) } }
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        let cEnv: [UnsafeMutablePointer<CChar>?] = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for p in cEnv { free(p) } }
        var child: pid_t = 0
        let rc = posix_spawn(&child, argv[0], &actions, nil, cArgs, cEnv)
        guard rc == 0 else { throw UnexpectedAnswer(description: "posix_spawn \(argv[0]): \(String(cString: strerror(rc)))") }
        pid = child
    }

    /// Waits for the child; its exit status (128 + signal when killed).
    func wait() -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let signal = status & 0x7f
        return signal == 0 ? (status >> 8) & 0xff : 128 + signal
    }

    /// Runs `argv` to its end; its exit status.
    static func run(_ argv: [String], output: String, environment: [String: String] = [:]) throws -> Int32 {
        try Spawned(argv, output: output, environment: environment).wait()
    }
}
