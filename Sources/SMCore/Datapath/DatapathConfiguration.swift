/// What one datapath serves and where: the chain of a VDI of an SR attached on this host, named
/// by (driver, SR, VDI) and reached through the SR's container rebuilt from its recorded plug; a
/// unix socket in its folder and optionally TCP on 127.0.0.1. No path crosses the process
/// boundary but the datapath's own folder.
public struct DatapathConfiguration: Sendable {
    /// The SR type whose driver rebuilds the container (`ext`, `nfs`, `lvmoiscsi`).
    public var driver: String
    /// The SR uuid.
    public var srUUID: String
    /// The VDI uuid (the default export name).
    public var vdiUUID: String
    /// Where the sockets go.
    public var directory: DatapathDirectory
    /// The NBD export name.
    public var exportName: String
    /// Whether the export is read-only (leaf opened read-only, writes refused with EPERM).
    public var readOnly: Bool
    /// TCP port on 127.0.0.1 to serve on too (0: any free port); nil: unix socket only.
    public var tcpPort: Int?
    /// The run directory (its SMlog receives the datapath's log lines; its plug records name
    /// the SR's container).
    public var run: RunDirectory

    /// A configuration serving VDI `vdiUUID` of SR `srUUID` (driver `driver`) as export
    /// `exportName` (default: the VDI uuid) from `directory`.
    public init(driver: String, srUUID: String, vdiUUID: String, directory: DatapathDirectory,
                exportName: String? = nil, readOnly: Bool = false, tcpPort: Int? = nil, run: RunDirectory = .current) {
        self.driver = driver
        self.srUUID = srUUID
        self.vdiUUID = vdiUUID
        self.directory = directory
        self.exportName = exportName ?? vdiUUID
        self.readOnly = readOnly
        self.tcpPort = tcpPort
        self.run = run
    }

    /// The command-line arguments of `swiftsm-datapath` for this configuration.
    public var arguments: [String] {
        var a = ["--driver", driver, "--sr", srUUID, "--vdi", vdiUUID, "--dir", directory.path, "--export", exportName,
                 "--run", run.root]
        if readOnly { a.append("--read-only") }
        if let p = tcpPort { a += ["--tcp", String(p)] }
        return a
    }

    /// Parses `swiftsm-datapath` arguments (the inverse of `arguments`); nil when malformed.
    public init?(arguments: [String], run: RunDirectory = .current) {
        var values: [String: String] = [:]
        var readOnly = false
        var i = 0
        while i < arguments.count {
            let a = arguments[i]
            if a == "--read-only" { readOnly = true; i += 1; continue }
            guard ["--driver", "--sr", "--vdi", "--dir", "--export", "--tcp", "--run"].contains(a), i + 1 < arguments.count else { return nil }
            values[a] = arguments[i + 1]
            i += 2
        }
        guard let driver = values["--driver"], let sr = values["--sr"], let vdi = values["--vdi"], let dir = values["--dir"],
              VDIName.isUUID(sr), VDIName.isUUID(vdi) else { return nil }
        var port: Int? = nil
        if let t = values["--tcp"] {
            guard let p = Int(t), (0...65535).contains(p) else { return nil }
            port = p
        }
        self.init(driver: driver, srUUID: sr, vdiUUID: vdi, directory: DatapathDirectory(path: dir),
                  exportName: values["--export"], readOnly: readOnly, tcpPort: port,
                  run: values["--run"].map { RunDirectory(root: $0) } ?? run)
    }
}
