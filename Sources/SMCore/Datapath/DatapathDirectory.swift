/// Where one VDI's datapath keeps its files on a host:
/// `<run>/datapath/<sr>/<vdi>/{nbd, ctl, pid, refcount, datapath.log, tcp-port}`. Socket names are
/// short because a unix socket path must fit in 107 bytes: the run directory may be at most 20
/// characters long (`/run/swiftsm` is 12).
public struct DatapathDirectory: Sendable, Equatable {
    /// Longest unix socket path the kernel takes (`sun_path` is 108 bytes with the NUL).
    public static let maxSocketPath = 107

    /// The folder.
    public let path: String

    /// The folder of VDI `vdi` of SR `sr` under `run`.
    public init(run: RunDirectory, sr: String, vdi: String) {
        path = run.root + "/datapath/" + sr + "/" + vdi
    }

    /// A datapath folder at `path` (tests, hand-started datapaths).
    public init(path: String) { self.path = path }

    /// The NBD unix socket.
    public var nbdSocket: String { path + "/nbd" }
    /// The control socket.
    public var controlSocket: String { path + "/ctl" }
    /// The datapath process id (decimal, one line).
    public var pidFile: String { path + "/pid" }
    /// Activation count and mode: `<count> RW|RO`.
    public var refcountFile: String { path + "/refcount" }
    /// The process's stdout and stderr.
    public var logFile: String { path + "/datapath.log" }
    /// The TCP port on 127.0.0.1, when one was asked for.
    public var tcpPortFile: String { path + "/tcp-port" }

    /// Whether both sockets fit in `sun_path`.
    public var socketPathsFit: Bool {
        nbdSocket.utf8.count <= Self.maxSocketPath && controlSocket.utf8.count <= Self.maxSocketPath
    }

    /// `params_nbd` as the Python SM gives it: `nbd:unix:<socket>:exportname=<export>`.
    public func paramsNBD(export: String) -> String { "nbd:unix:\(nbdSocket):exportname=\(export)" }

    /// The NBD URI for libnbd and qemu clients: `nbd+unix:///<export>?socket=<socket>`.
    public func uri(export: String) -> String { "nbd+unix:///\(export)?socket=\(nbdSocket)" }
}

extension RunDirectory {
    /// The datapath folder of VDI `vdi` of SR `sr`.
    public func datapath(sr: String, vdi: String) -> DatapathDirectory { DatapathDirectory(run: self, sr: sr, vdi: vdi) }
}
