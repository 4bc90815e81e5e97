/// What one datapath serves and where: the chain of a VDI's leaf, over a unix socket in its
/// folder and optionally TCP on 127.0.0.1.
public struct DatapathConfiguration: Sendable {
    /// The SR uuid (for logs).
    public var srUUID: String
    /// The VDI uuid (for logs; the default export name).
    public var vdiUUID: String
    /// The VHD the chain is opened from.
    public var leafPath: String
    /// Where the sockets go.
    public var directory: DatapathDirectory
    /// The NBD export name.
    public var exportName: String
    /// Whether the export is read-only (leaf opened read-only, writes refused with EPERM).
    public var readOnly: Bool
    /// TCP port on 127.0.0.1 to serve on too (0: any free port); nil: unix socket only.
    public var tcpPort: Int?
    /// The run directory (its SMlog receives the datapath's log lines).
    public var run: RunDirectory

    /// A configuration serving `leafPath` as export `vdiUUID` from `directory`.
    public init(srUUID: String, vdiUUID: String, leafPath: String, directory: DatapathDirectory,
                exportName: String? = nil, readOnly: Bool = false, tcpPort: Int? = nil, run: RunDirectory = .current) {
        self.srUUID = srUUID
        self.vdiUUID = vdiUUID
        self.leafPath = leafPath
        self.directory = directory
        self.exportName = exportName ?? vdiUUID
        self.readOnly = readOnly
        self.tcpPort = tcpPort
        self.run = run
    }

    /// The command-line arguments of `swiftsm-datapath` for this configuration.
    public var arguments: [String] {
        var a = ["--sr", srUUID, "--vdi", vdiUUID, "--leaf", leafPath, "--dir", directory.path, "--export", exportName]
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
            guard ["--sr", "--vdi", "--leaf", "--dir", "--export", "--tcp"].contains(a), i + 1 < arguments.count else { return nil }
            values[a] = arguments[i + 1]
            i += 2
        }
        guard let sr = values["--sr"], let vdi = values["--vdi"], let leaf = values["--leaf"], let dir = values["--dir"] else { return nil }
        var port: Int? = nil
        if let t = values["--tcp"] {
            guard let p = Int(t), (0...65535).contains(p) else { return nil }
            port = p
        }
        self.init(srUUID: sr, vdiUUID: vdi, leafPath: leaf, directory: DatapathDirectory(path: dir),
                  exportName: values["--export"], readOnly: readOnly, tcpPort: port, run: run)
    }
}
