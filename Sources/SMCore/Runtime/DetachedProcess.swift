import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Starting a long-lived helper process detached from the short-lived caller (the datapath, a
/// background collector): a new session (posix_spawn with POSIX_SPAWN_SETSID), default signal
/// handling, stdin from /dev/null, stdout and stderr appended to a log, no other descriptor
/// inherited (so no lock of the caller outlives it).
public enum DetachedProcess {
    /// glibc's POSIX_SPAWN_SETSID (not exported to Swift).
    static let spawnSetSID: Int32 = 0x80

    /// Spawns `executable` with `arguments` (after argv[0]) and the caller's environment, output
    /// to `logFile`, in `directory` when given (else the caller's); returns the pid. A thread reaps
    /// the child when it ends, so a long-lived caller collects no zombies.
    public static func spawn(_ executable: String, arguments: [String], logFile: String, directory: String? = nil) throws -> pid_t {
        var attr = posix_spawnattr_t()
        posix_spawnattr_init(&attr)
        defer { posix_spawnattr_destroy(&attr) }
        var none = sigset_t()
        sigemptyset(&none)
        var all = sigset_t()
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attr, &none)
        posix_spawnattr_setsigdefault(&attr, &all)
        posix_spawnattr_setflags(&attr, Int16(spawnSetSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, logFile, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        if let closeFrom = addCloseFrom { _ = closeFrom(&actions, 3) }
        if let d = directory {
            guard let addChdir else { throw StorageError.system(executable, "posix_spawn_file_actions_addchdir_np", ENOSYS) }
            _ = addChdir(&actions, d)
        }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let r = argv.withUnsafeBufferPointer { posix_spawn(&pid, executable, &actions, &attr, $0.baseAddress!, environ) }
        guard r == 0 else { throw StorageError.system(executable, "posix_spawn", r) }
        let child = pid
        Thread.detachNewThread {
            var status: Int32 = 0
            while waitpid(child, &status, 0) < 0 && errno == EINTR {}
        }
        return pid
    }

    /// glibc ≥ 2.29's `posix_spawn_file_actions_addchdir_np` (not exported to Swift), looked up at run time.
    static let addChdir: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, UnsafePointer<CChar>?) -> Int32)? = {
        guard let sym = dlsym(nil, "posix_spawn_file_actions_addchdir_np") else { return nil }
        return unsafeBitCast(sym, to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, UnsafePointer<CChar>?) -> Int32).self)
    }()

    /// glibc ≥ 2.34's `posix_spawn_file_actions_addclosefrom_np` (not exported to Swift), looked up at run time.
    static let addCloseFrom: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, Int32) -> Int32)? = {
        guard let sym = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(sym, to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>?, Int32) -> Int32).self)
    }()
}
