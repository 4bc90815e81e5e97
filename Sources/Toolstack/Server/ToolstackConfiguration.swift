import Foundation

/// How toolstackd runs: where it keeps state, where it listens, where the storage plugins are.
public struct ToolstackConfiguration: Sendable {
    /// The state directory (database, certificate, run directory, configuration file).
    public var stateDirectory: String
    /// The local unix socket (xapi's `/var/lib/xcp/xapi` by default).
    public var socketPath: String
    /// The TCP port, when TCP is served.
    public var port: Int?
    /// Whether TCP speaks TLS (the default; plain HTTP only when asked).
    public var tls: Bool = true
    /// The address TCP binds to.
    public var bindAddress: String = "0.0.0.0"
    /// The TCP port of the NBD-over-TLS server that `VDI.get_nbd_info` points at (xapi's 10809), when served.
    public var nbdPort: Int?
    /// The host's address on its management network (its PIF's IP, where NBD clients connect).
    public var address: String = "127.0.0.1"
    /// Where the SMAPIv1 plugins `<TYPE>SR` are (xapi's `/opt/xensource/sm`).
    public var smDirectory: String
    /// Where the host plugins are (xapi's `/etc/xapi.d/plugins`): `datapath-mirror` for live
    /// migrations.
    public var pluginDirectory: String = "/etc/xapi.d/plugins"
    /// The run directory handed to plugins as `SWIFTSM_RUN_DIR` (short: socket paths live there).
    public var runDirectory: String
    /// root's password hash (`$6$…`); nil refuses every login over TCP.
    public var rootPasswordHash: String?
    /// Largest request body accepted, in bytes.
    public var maxBodyBytes: Int = 8 << 20
    /// Seconds a connection may sit idle (or trickle a request) before it is closed.
    public var idleTimeout: Int64 = 60
    /// The host's name.
    public var hostname: String = ProcessInfo.processInfo.hostName

    /// A configuration with `stateDirectory`'s defaults, reading `toolstackd.conf` there when present
    /// (`root-password-hash = $6$…`).
    public init(stateDirectory: String, socketPath: String? = nil, port: Int? = nil, smDirectory: String? = nil,
                 runDirectory: String? = nil) {
        self.stateDirectory = stateDirectory
        self.socketPath = socketPath ?? "/var/lib/xcp/xapi"
        self.port = port
        self.smDirectory = smDirectory ?? "/opt/xensource/sm"
        self.runDirectory = runDirectory ?? stateDirectory + "/run"
        if let text = try? String(contentsOfFile: configFile, encoding: .utf8) {
            for line in text.split(separator: "\n") {
                let parts = line.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                guard parts.count == 2, !parts[0].hasPrefix("#") else { continue }
                if parts[0] == "root-password-hash" { rootPasswordHash = parts[1] }
            }
        }
    }

    /// The configuration file in the state directory.
    public var configFile: String { stateDirectory + "/toolstackd.conf" }
    /// The SQLite database file.
    public var databaseFile: String { stateDirectory + "/state.db" }
}
