import RemoteStorage

/// Where an NFS export is and how to talk to it: what `device-config` and the SR's
/// other-config say, resolved once.
public struct NFSTarget: Sendable, Hashable {
    /// Host name or address (IPv6 without brackets).
    public var server: String
    /// The path mounted (`serverpath`): an export or a directory within one.
    public var export: String
    /// The NFS port (nil: 2049 through the portmapper).
    public var nfsPort: Int?
    /// The MOUNT protocol's port (nil: through the portmapper).
    public var mountPort: Int?
    /// Seconds one RPC may take before it counts as unanswered (libnfs counts whole seconds).
    public var timeoutSeconds: Int
    /// Further attempts after an unanswered RPC before a soft client gives up.
    public var retrans: Int
    /// What to do when the server stops answering.
    public var hold: HoldPolicy
    /// Most connections one process opens to the export (requests on different connections
    /// run at once; libnfs pipelines the RPCs of one large request on its connection).
    public var connections: Int

    /// A target; `timeoutSeconds` 20 and `retrans` 4 are the Python SM's defaults (`timeo=200`
    /// deciseconds, `retrans=4`).
    public init(server: String, export: String, nfsPort: Int? = nil, mountPort: Int? = nil,
                timeoutSeconds: Int = 20, retrans: Int = 4, hold: HoldPolicy = .soft, connections: Int = 8) {
        self.server = server
        self.export = export
        self.nfsPort = nfsPort
        self.mountPort = mountPort
        self.timeoutSeconds = max(1, timeoutSeconds)
        self.retrans = max(0, retrans)
        self.hold = hold
        self.connections = max(1, connections)
    }

    /// The libnfs URL of the export (ports given explicitly skip the portmapper).
    var url: String {
        var query = ["version=3"]
        if let p = nfsPort { query.append("nfsport=\(p)") }
        if let p = mountPort { query.append("mountport=\(p)") }
        return "nfs://\(server)\(export)?" + query.joined(separator: "&")
    }

    /// The NFS port connections go to.
    var port: Int { nfsPort ?? 2049 }
}
