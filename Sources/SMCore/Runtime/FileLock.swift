import Foundation

/// An exclusive advisory lock on a file (flock), held until `unlock` or process exit; used for
/// the SR lock and per-VDI locks under the run directory.
public final class FileLock {
    /// The lock file.
    public let path: String
    private var fd: Int32 = -1

    /// A lock on `path` (its folder is created if needed).
    public init(path: String) {
        self.path = path
    }

    /// Blocks until the lock is held; gives up after `timeout` seconds (nil: wait forever), or
    /// as soon as `giveUp` says so (polled while waiting).
    public func lock(timeout: Double? = nil, giveUp: (() -> Bool)? = nil) throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent,
                                                withIntermediateDirectories: true)
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw StorageError.system(path, "open", errno) }
        let deadline = timeout.map { Date().addingTimeInterval($0) }
        while flock(fd, LOCK_EX | LOCK_NB) != 0 {
            guard errno == EWOULDBLOCK || errno == EINTR else { throw StorageError.system(path, "flock", errno) }
            if let d = deadline, Date() > d {
                close(fd); fd = -1
                throw StorageError.system(path, "flock (timed out)", EWOULDBLOCK)
            }
            if giveUp?() == true {
                close(fd); fd = -1
                throw StorageError.system(path, "flock (given up)", ECANCELED)
            }
            usleep(10_000)
        }
    }

    /// Takes the lock if nobody holds it; returns whether it is held now.
    public func tryLock() -> Bool {
        if fd >= 0 { return true }
        do { try lock(timeout: 0) } catch { return false }
        return true
    }

    /// Whether the lock is held by this object.
    public var isHeld: Bool { fd >= 0 }

    /// Releases the lock.
    public func unlock() {
        guard fd >= 0 else { return }
        flock(fd, LOCK_UN)
        close(fd)
        fd = -1
    }

    deinit { unlock() }
}
