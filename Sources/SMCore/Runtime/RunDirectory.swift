import Foundation

/// Everything a host keeps under one folder: SR mount points, locks, refcounts, datapath sockets.
/// `/run/swiftsm` unless `SWIFTSM_RUN_DIR` says otherwise.
public struct RunDirectory: Sendable {
    /// The root folder.
    public let root: String

    /// The run directory of this process's environment.
    public static var current: RunDirectory {
        RunDirectory(root: ProcessInfo.processInfo.environment["SWIFTSM_RUN_DIR"] ?? "/run/swiftsm")
    }

    /// A run directory at `root`.
    public init(root: String) { self.root = root }

    /// Where SR `uuid` is mounted (device SRs).
    public func mountPoint(sr uuid: String) -> String { root + "/sr-mount/" + uuid }

    /// The SR lock of SR `uuid`.
    public func srLock(_ uuid: String) -> FileLock { FileLock(path: root + "/lock/" + uuid + "/sr") }

    /// The lock of VDI `uuid`.
    public func vdiLock(_ uuid: String) -> FileLock { FileLock(path: root + "/lock/" + uuid + "/vdi") }

    /// Where SR `uuid` records how it was attached (path or mount point).
    public func attachRecord(sr uuid: String) -> String { root + "/sr/" + uuid + ".path" }

    /// The SMlog-style log file.
    public var logFile: String { root + "/SMlog" }
}
