import Foundation
import Logging
#if canImport(Glibc)
import Glibc
#endif

/// The host's datapaths as `vdi_activate`/`vdi_deactivate` and snapshot see them: one process
/// per active VDI, counted activations in `<dir>/refcount`, everything under the VDI lock. A pid
/// file whose process is gone (or is not this VDI's datapath: pids are recycled, or does not
/// answer) is stale: its files are cleaned up and the next activation starts afresh.
public struct DatapathManager {
    /// Seconds to wait for a new datapath to answer on its control socket.
    public static let startTimeout = 30.0
    /// Seconds to wait for a closing datapath to exit before SIGKILL.
    public static let stopTimeout = 60.0

    /// The host's run directory.
    public let run: RunDirectory
    /// The log.
    public let log: Logger
    /// The `swiftsm-datapath` executable (nil: `DatapathLauncher.executable()`).
    public var executable: String?

    /// A manager over `run`.
    public init(run: RunDirectory, log: Logger, executable: String? = nil) {
        self.run = run
        self.log = log
        self.executable = executable
    }

    /// An activation count and the mode the datapath runs in.
    public struct Activation: Equatable, Sendable {
        /// Activations not yet deactivated.
        public var count: Int
        /// Whether the datapath serves read-write.
        public var writable: Bool
    }

    /// Starts the datapath of VDI `vdi` of SR `sr`, whose container driver `driver` rebuilds from
    /// the SR's plug record (or counts one more activation of a running one); returns its folder.
    /// A read-write activation of a read-only datapath is refused.
    @discardableResult
    public func activate(driver: String, sr: String, vdi: String, writable: Bool, tcpPort: Int? = nil) throws -> DatapathDirectory {
        let dir = run.datapath(sr: sr, vdi: vdi)
        guard dir.socketPathsFit else { throw DatapathError.socketPathTooLong(dir.nbdSocket) }
        let lock = run.vdiLock(vdi)
        try lock.lock(timeout: 120)
        defer { lock.unlock() }
        if runningPID(dir) != nil {
            var a = activation(dir) ?? Activation(count: 0, writable: (try? DatapathControlClient(socketPath: dir.controlSocket)
                .stats().readOnly) == false)
            if writable && !a.writable { throw DatapathError.modeConflict("VDI \(vdi) is active read-only on this host") }
            a.count += 1
            try write(a, dir)
            log.info("datapath of \(vdi) already running, activations \(a.count)")
            return dir
        }
        cleanUp(dir)
        guard let exe = executable ?? DatapathLauncher.executable() else { throw DatapathError.executableMissing }
        try FileManager.default.createDirectory(atPath: dir.path, withIntermediateDirectories: true)
        let config = DatapathConfiguration(driver: driver, srUUID: sr, vdiUUID: vdi, directory: dir,
                                           readOnly: !writable, tcpPort: tcpPort, run: run)
        let pid = try DatapathLauncher.spawn(config, executable: exe)
        do {
            try atomicWrite(dir.pidFile, "\(pid)\n")
            try DatapathLauncher.waitUntilReady(pid, directory: dir, timeout: Self.startTimeout)
            try write(Activation(count: 1, writable: writable), dir)
        } catch {
            if DatapathLauncher.isRunning(pid, directory: dir) { kill(pid, SIGKILL) }
            _ = DatapathLauncher.waitForExit(pid, directory: dir, timeout: 5)
            cleanUp(dir)
            throw error
        }
        log.info("datapath of \(vdi) started, pid \(pid), \(writable ? "read-write" : "read-only")")
        return dir
    }

    /// Counts one deactivation; the last one closes the datapath (flush, exit) and removes its files.
    public func deactivate(sr: String, vdi: String) throws {
        let dir = run.datapath(sr: sr, vdi: vdi)
        let lock = run.vdiLock(vdi)
        try lock.lock(timeout: 120)
        defer { lock.unlock() }
        guard let pid = runningPID(dir) else {
            cleanUp(dir)
            return
        }
        if var a = activation(dir), a.count > 1 {
            a.count -= 1
            try write(a, dir)
            log.info("datapath of \(vdi): activations \(a.count)")
            return
        }
        try stop(pid, dir)
        cleanUp(dir)
        log.info("datapath of \(vdi) stopped")
    }

    /// Whether VDI `vdi` has a running datapath on this host.
    public func isActive(sr: String, vdi: String) -> Bool { runningPID(run.datapath(sr: sr, vdi: vdi)) != nil }

    /// Runs `body` with the datapath of `vdi` (if any) paused: requests held, chain flushed and
    /// closed. Afterwards the datapath reopens the chain from the VDI's leaf and the held requests run
    /// there in order. Without a datapath, just runs `body`.
    /// `flushFirst` forces the writes to disk before pausing (a shorter pause when much is
    /// unflushed); `sync` false only writes the leaf's metadata at the pause (for a leaf that is
    /// merged away while paused). `paused` is told how long the datapath was held.
    public func withPaused<T>(sr: String, vdi: String, sync: Bool = true, flushFirst: Bool = false,
                              paused: ((Double) -> Void)? = nil, _ body: () throws -> T) throws -> T {
        let dir = run.datapath(sr: sr, vdi: vdi)
        let lock = run.vdiLock(vdi)
        try lock.lock(timeout: 120)
        defer { lock.unlock() }
        guard runningPID(dir) != nil else { return try body() }
        let control = DatapathControlClient(socketPath: dir.controlSocket)
        if flushFirst { _ = try control.send("flush") }
        let start = Date()
        defer {
            let held = Date().timeIntervalSince(start)
            log.info("datapath of \(vdi) held its requests \(String(format: "%.3f", held)) s")
            paused?(held)
        }
        do { _ = try control.send(sync ? "pause" : "pause nosync") } catch {
            _ = try? control.send("unpause")
            throw error
        }
        log.info("datapath of \(vdi) paused")
        let result = Result { try body() }
        _ = try control.send("unpause")
        log.info("datapath of \(vdi) unpaused")
        return try result.get()
    }

    /// Pauses the running datapath of `vdi`, if any, for a change another process makes (the
    /// `tapdisk-pause` plugin, called by the SR master on this host): written data forced to
    /// disk, requests held, chain closed, until `unpause`. Whether one runs here.
    @discardableResult
    public func pause(sr: String, vdi: String) throws -> Bool {
        try control(sr: sr, vdi: vdi) { control in
            _ = try control.send("flush")
            do { _ = try control.send("pause") } catch {
                _ = try? control.send("unpause")
                throw error
            }
            log.info("datapath of \(vdi) paused for another host's change")
        }
    }

    /// Reopens the datapath of `vdi` paused by `pause`, if one runs here, on the VDI's leaf as it
    /// is now, and releases its held requests. Whether one runs here.
    @discardableResult
    public func unpause(sr: String, vdi: String) throws -> Bool {
        try control(sr: sr, vdi: vdi) { control in
            _ = try control.send("unpause")
            log.info("datapath of \(vdi) unpaused after another host's change")
        }
    }

    /// Runs `body` with the control socket of `vdi`'s running datapath under the VDI lock;
    /// false (and nothing run) when none runs here.
    func control(sr: String, vdi: String, _ body: (DatapathControlClient) throws -> Void) throws -> Bool {
        let dir = run.datapath(sr: sr, vdi: vdi)
        let lock = run.vdiLock(vdi)
        try lock.lock(timeout: 120)
        defer { lock.unlock() }
        guard runningPID(dir) != nil else { return false }
        try body(DatapathControlClient(socketPath: dir.controlSocket))
        return true
    }

    /// Reopens the running datapath of `vdi` (if any) on its leaf without pausing it: its
    /// chain's parents changed (a relink). `lockHeld`: the caller holds the VDI lock already.
    /// Returns how long requests were held, nil without one.
    @discardableResult
    public func refresh(sr: String, vdi: String, lockHeld: Bool = false) throws -> Double? {
        let dir = run.datapath(sr: sr, vdi: vdi)
        let lock = run.vdiLock(vdi)
        if !lockHeld { try lock.lock(timeout: 120) }
        defer { if !lockHeld { lock.unlock() } }
        guard runningPID(dir) != nil else { return nil }
        let start = Date()
        _ = try DatapathControlClient(socketPath: dir.controlSocket).send("refresh")
        log.info("datapath of \(vdi) refreshed")
        return Date().timeIntervalSince(start)
    }

    /// The activation record, nil when absent or unreadable.
    public func activation(_ dir: DatapathDirectory) -> Activation? {
        guard let text = try? String(contentsOfFile: dir.refcountFile, encoding: .utf8) else { return nil }
        let f = text.split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard f.count == 2, let n = Int(f[0]), n > 0, f[1] == "RW" || f[1] == "RO" else { return nil }
        return Activation(count: n, writable: f[1] == "RW")
    }

    /// The pid of a live, answering datapath in `dir`; a live one that does not answer is killed.
    func runningPID(_ dir: DatapathDirectory) -> pid_t? {
        guard let text = try? String(contentsOfFile: dir.pidFile, encoding: .utf8),
              let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)),
              DatapathLauncher.isRunning(pid, directory: dir) else { return nil }
        if DatapathControlClient(socketPath: dir.controlSocket).ping() { return pid }
        log.warning("datapath pid \(pid) does not answer; killing it")
        kill(pid, SIGKILL)
        _ = DatapathLauncher.waitForExit(pid, directory: dir, timeout: 5)
        return nil
    }

    func stop(_ pid: pid_t, _ dir: DatapathDirectory) throws {
        do { _ = try DatapathControlClient(socketPath: dir.controlSocket).send("close") } catch {
            log.warning("datapath close failed (\(error)); sending SIGTERM")
            if DatapathLauncher.isRunning(pid, directory: dir) { kill(pid, SIGTERM) }
        }
        if !DatapathLauncher.waitForExit(pid, directory: dir, timeout: Self.stopTimeout) {
            log.error("datapath pid \(pid) did not exit; killing it")
            if DatapathLauncher.isRunning(pid, directory: dir) { kill(pid, SIGKILL) }
            _ = DatapathLauncher.waitForExit(pid, directory: dir, timeout: 5)
        }
    }

    /// Removes the pid, refcount, sockets and port files (the log stays).
    func cleanUp(_ dir: DatapathDirectory) {
        for f in [dir.pidFile, dir.refcountFile, dir.nbdSocket, dir.controlSocket, dir.tcpPortFile] { unlink(f) }
    }

    func write(_ a: Activation, _ dir: DatapathDirectory) throws {
        try atomicWrite(dir.refcountFile, "\(a.count) \(a.writable ? "RW" : "RO")\n")
    }

    func atomicWrite(_ path: String, _ text: String) throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
    }
}
