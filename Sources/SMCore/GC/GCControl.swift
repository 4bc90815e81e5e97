import Foundation

/// The files through which the collector of one SR and the rest of the host talk (reference
/// §3.7, §4.6): `lock/<sr>/gc_active` is held by the one collector running for the SR, the flag
/// `gc/<sr>/abort` asks it to stop at its next safe point, `gc/<sr>/kick` says new work may have
/// appeared since it last looked, `gc/<sr>/status.json` is what it is doing, `gc/<sr>/speed` its
/// recent coalesce speeds.
public struct GCControl: Sendable {
    /// The host's run directory.
    public let run: RunDirectory
    /// The SR.
    public let sr: String

    /// The control files of SR `sr` under `run`.
    public init(run: RunDirectory, sr: String) {
        self.run = run
        self.sr = sr
    }

    /// The folder of the SR's control files.
    public var directory: String { run.root + "/gc/" + sr }
    /// The abort flag.
    public var abortFlag: String { directory + "/abort" }
    /// The kick flag.
    public var kickFlag: String { directory + "/kick" }
    /// The status file.
    public var statusFile: String { directory + "/status.json" }
    /// The speed log.
    public var speedFile: String { directory + "/speed" }

    /// The lock a running collector holds for its whole life.
    public func activeLock() -> FileLock { FileLock(path: run.root + "/lock/" + sr + "/gc_active") }

    /// Whether a collector is running for the SR now.
    public var isRunning: Bool {
        let probe = activeLock()
        defer { probe.unlock() }
        return !probe.tryLock()
    }

    /// Whether an abort has been asked for.
    public var abortRequested: Bool { access(abortFlag, F_OK) == 0 }

    /// Whether new work was announced.
    public var kicked: Bool { access(kickFlag, F_OK) == 0 }

    /// Announces new work (the collector looks again before it exits).
    public func kick() { touch(kickFlag) }

    /// Clears the kick flag.
    public func clearKick() { unlink(kickFlag) }

    /// Asks a running collector to stop and waits until it has (at most `timeout` seconds);
    /// returns whether none runs now. The flag is cleared either way.
    @discardableResult
    public func abort(timeout: Double = 60) -> Bool {
        guard let held = stopAndHold(timeout: timeout) else { return false }
        held.unlock()
        return true
    }

    /// Asks a running collector to stop, waits (at most `timeout` seconds) and takes its lock, so
    /// that none starts until the returned lock is released; nil when it did not stop in time.
    public func stopAndHold(timeout: Double = 60) -> FileLock? {
        let lock = activeLock()
        defer { clearAbort() }
        if lock.tryLock() { return lock }
        touch(abortFlag)
        do {
            try lock.lock(timeout: timeout, giveUp: {
                touch(abortFlag)          // a collector starting meanwhile clears it: ask again
                return false
            })
        } catch { return nil }
        return lock
    }

    /// Clears a stale abort flag (a collector starting afresh).
    public func clearAbort() { unlink(abortFlag) }

    /// The last status written, nil when the collector never ran here.
    public func status() -> GCStatus? {
        guard let data = FileManager.default.contents(atPath: statusFile) else { return nil }
        return try? GCStatus.decoded(from: data)
    }

    /// Writes `status` atomically.
    public func write(_ status: GCStatus) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        guard let data = try? encoder.encode(status) else { return }
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try? data.write(to: URL(fileURLWithPath: statusFile), options: .atomic)
    }

    func touch(_ path: String) {
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
        if fd >= 0 { close(fd) }
    }
}
