import Foundation
import SMCore
import RemoteStorage

/// An NFS SR's settings as the Python SM reads them: device-config `server`, `serverpath`,
/// `nfsversion`, `options` (mount options: `port=`, `mountport=`, `soft`, `hard`, `timeo=`,
/// `retrans=`; options only the kernel's client knows are ignored), `useUDP`; SR sm-config
/// `nosubdir`; SR other-config `nfs-timeout` (deciseconds), `nfs-retrans` and
/// `nfs-hold-timeout` (seconds the data path holds requests through an outage).
struct NFSConfiguration {
    /// The server (102 when missing).
    var server: String
    /// `serverpath`, nil when absent (101 for the calls that need it).
    var serverPath: String?
    /// The SR's directory is `serverpath` itself, not `serverpath/<sr>`.
    var noSubdirectory: Bool
    /// Seconds an RPC may take (`timeo=` or `nfs-timeout`, deciseconds, default 200, rounded up).
    var timeoutSeconds: Int
    /// `retrans=` or `nfs-retrans` (default 4).
    var retrans: Int
    /// `soft`, `hard`, or neither (the data path then holds for `holdSeconds`).
    var mode: String?
    /// `nfs-hold-timeout`, default 300 seconds.
    var holdSeconds: Double
    /// `port=` of `options`: the NFS port (nil: 2049 through the portmapper).
    var nfsPort: Int?
    /// `mountport=` of `options`: the MOUNT port (nil: through the portmapper).
    var mountPort: Int?

    /// Default `nfs-hold-timeout`: five minutes.
    static let defaultHoldSeconds = 300.0

    /// Reads and checks the settings of the call in `c` (faults 102, 103, 72, 73).
    init(_ c: DriverContext) throws {
        guard let server = c.config("server"), !server.isEmpty else { throw SMAPIError(.ConfigServerMissing) }
        guard !server.contains("/"), !server.contains("?"), !server.contains(" ") else {
            throw SMAPIError(.NFSTarget, opterr: "bad server name \(server)")
        }
        self.server = server.hasPrefix("[") && server.hasSuffix("]") ? String(server.dropFirst().dropLast()) : server
        if let p = c.config("serverpath") {
            guard p.hasPrefix("/"), !p.contains("?"), !p.contains("&"), !p.split(separator: "/").contains("..") else {
                throw SMAPIError(.ConfigServerPathBad, opterr: p)
            }
            serverPath = p.count > 1 && p.hasSuffix("/") ? String(p.dropLast()) : p
        }
        switch c.config("nfsversion") ?? "3" {
        case "3", "": break
        case "4", "4.0", "4.1":
            // libnfs 4.0 (Debian 12) fails NFSv4 WRITEs of 4 KiB or more: no SR can live on it.
            throw SMAPIError(.NFSVersion, opterr: "NFSv4 is not supported by this client's libnfs; use nfsversion=3")
        case let v:
            throw SMAPIError(.NFSVersion, opterr: "invalid nfsversion \(v)")
        }
        if c.config("useUDP") == "true" { throw SMAPIError(.NFSMount, opterr: "UDP is not supported: NFS over TCP only") }
        noSubdirectory = c.request.srSMConfig?["nosubdir"] == "true"
        let other = c.srOtherConfig()
        var timeo = other["nfs-timeout"].flatMap(Int.init) ?? 200
        var retrans = other["nfs-retrans"].flatMap(Int.init) ?? 4
        holdSeconds = other["nfs-hold-timeout"].flatMap(Double.init) ?? Self.defaultHoldSeconds
        for option in (c.config("options") ?? "").split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !option.isEmpty {
            let parts = option.split(separator: "=", maxSplits: 1).map(String.init)
            let value = parts.count == 2 ? Int(parts[1]) : nil
            switch parts[0] {
            case "soft", "hard": mode = parts[0]
            case "timeo": timeo = try Self.number(option, value)
            case "retrans": retrans = try Self.number(option, value)
            case "port": nfsPort = try Self.number(option, value)
            case "mountport": mountPort = try Self.number(option, value)
            case "vers", "nfsvers":
                guard parts.count == 2, parts[1] == "3" else { throw SMAPIError(.NFSVersion, opterr: option) }
            case "proto":
                guard parts.count == 2, parts[1].hasPrefix("tcp") else { throw SMAPIError(.NFSMount, opterr: "\(option): TCP only") }
            default: break
            }
        }
        timeoutSeconds = max(1, (timeo + 9) / 10)
        self.retrans = max(0, retrans)
    }

    /// A number an option needs (73 otherwise).
    private static func number(_ option: String, _ value: Int?) throws -> Int {
        guard let value, value >= 0 else { throw SMAPIError(.NFSMount, opterr: "bad mount option \(option)") }
        return value
    }

    /// `serverpath`, required (101).
    func requiredServerPath() throws -> String {
        guard let p = serverPath else { throw SMAPIError(.ConfigServerPathMissing) }
        return p
    }

    /// The SR's directory within the mounted `serverpath`.
    func srDirectory(_ sr: String) -> String { noSubdirectory ? "/" : "/" + sr }

    /// The target for mounting `path` (default `serverpath`); a data path holds through
    /// outages unless the options say `soft`.
    func target(path: String? = nil, servesDataPath: Bool) throws -> NFSTarget {
        let hold: HoldPolicy
        switch mode {
        case "hard": hold = servesDataPath ? .hard : .soft
        case "soft": hold = .soft
        default: hold = servesDataPath ? .hold(seconds: holdSeconds) : .soft
        }
        return NFSTarget(server: server, export: try path ?? requiredServerPath(), nfsPort: nfsPort, mountPort: mountPort,
                         timeoutSeconds: timeoutSeconds, retrans: retrans, hold: hold)
    }
}
