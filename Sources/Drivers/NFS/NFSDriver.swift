import CNFS
import Foundation
import SMCore
import VHD
import RemoteStorage

/// The NFS SR: VHD files in `<serverpath>/<sr>` on an NFSv3 export, reached in user space
/// through libnfs (no kernel mount). Laid out exactly as the Python SM's NFSSR lays it out, so
/// an SR made by either attaches on the other. The SR is shared: every host reaches the same
/// files, and nothing relies on one host's page cache or file locks (see the README).
public final class NFSDriver: SRDriver, @unchecked Sendable {
    /// A driver instance.
    public init() {}

    /// `nfs`: `smdriver --driver nfs`, installed as `NFSSR`.
    public let type = "nfs"

    /// What `sr_get_driver_info` answers: only capabilities that really work.
    public let info = SMAPIDriverInfo(
        name: "NFS VHD", description: "SR plugin which stores disks as VHD files on a remote NFS filesystem",
        vendor: "SwiftSM", copyright: "(C) 2026 SwiftSM authors", driverVersion: "1.0", requiredAPIVersion: "1.0",
        capabilities: ["SR_PROBE", "SR_UPDATE", "VDI_CREATE", "VDI_DELETE", "VDI_ATTACH", "VDI_DETACH", "VDI_UPDATE",
                       "VDI_CLONE", "VDI_SNAPSHOT", "VDI_RESIZE", "VDI_GENERATE_CONFIG", "VDI_RESET_ON_BOOT/2",
                       "VDI_COMPOSE", "VDI_INTRODUCE", "ATOMIC_PAUSE", "VDI_ACTIVATE", "VDI_DEACTIVATE", "THIN_PROVISIONING",
                       "VDI_CONFIG_CBT"],
        configuration: [.init(key: "server", description: "hostname or IP address"),
                        .init(key: "serverpath", description: "path on remote server"),
                        .init(key: "nfsversion", description: "NFS version to use (3, the default and the only one this client writes)"),
                        .init(key: "options", description: "mount options: port=, mountport=, timeo=, retrans=, soft, hard")])

    /// `storage-type` of attach-from-config results.
    public let storageType = "nfs"

    /// `server` must be present (102 otherwise); `serverpath` is checked per call (101).
    public var requiredKeys: [(key: String, missing: SMErrorCode)] { [("server", .ConfigServerMissing)] }

    private let lock = NSLock()
    private var mounts: [NFSTarget: NFSMount] = [:]

    /// The mount of `target` this process already has, or a new one (the server checked
    /// first: 108 when nothing answers on its NFS port within the timeout).
    func mount(_ target: NFSTarget) throws -> NFSMount {
        if let m = lock.withLock({ mounts[target] }) { return m }
        if let why = TCPProbe.failure(host: target.server, port: target.port, timeout: Double(min(target.timeoutSeconds, 10))) {
            throw SMAPIError(.NFSTarget, opterr: "\(target.server):\(target.port): \(why)")
        }
        let m: NFSMount
        do { m = try NFSMount(target: target) } catch let e as NFSError { throw e.fault(for: .srAttach) }
        lock.withLock { mounts[target] = m }
        return m
    }

    /// The mounted `serverpath` of the call in `c`, and the settings.
    func mountServerPath(_ c: DriverContext) throws -> (NFSMount, NFSConfiguration) {
        let config = try NFSConfiguration(c)
        return (try mount(try config.target(servesDataPath: c.servesDataPath)), config)
    }

    /// Without `serverpath`: the exports list on stderr (as the Python SM prints it) and fault
    /// 101. With `probeversion`: the versions this client can use with the server. Else the
    /// `<SRlist>` of SR directories (uuid names) in `serverpath`.
    public func probe(_ c: DriverContext) throws -> String {
        let config = try NFSConfiguration(c)
        guard let path = config.serverPath else {
            let port = config.nfsPort ?? 2049
            if let why = TCPProbe.failure(host: config.server, port: port, timeout: Double(min(config.timeoutSeconds, 10))) {
                throw SMAPIError(.NFSTarget, opterr: "\(config.server):\(port): \(why)")
            }
            FileHandle.standardError.write(Data(NFSExports.document(server: config.server, mountPort: config.mountPort,
                                                                    timeout: Double(min(config.timeoutSeconds, 10))).utf8))
            throw SMAPIError(.ConfigServerPathMissing)
        }
        let m = try mount(try config.target(path: path, servesDataPath: false))
        if c.config("probeversion") != nil {
            return "<?xml version=\"1.0\" ?>\n<SupportedVersions>\n\t<Version>3</Version>\n</SupportedVersions>\n"
        }
        let fs = NFSFileSystem(mount: m)
        let uuids = try fs.nfs.list("/").filter { VDIName.isUUID($0) && fs.isDirectory("/" + $0) }
        return "<?xml version=\"1.0\" ?>\n<SRlist>\n" + uuids.map { "\t<SR>\n\t\t<UUID>\($0)</UUID>\n\t</SR>\n" }.joined() + "</SRlist>\n"
    }

    /// Makes `<serverpath>/<sr>` (0700; an existing empty one is taken, a non-empty one is 40
    /// SRExists) and checks that files can be made in it (88 NFSCreate, 461 on a read-only
    /// export).
    public func create(_ c: DriverContext, size: UInt64) throws {
        let sr = try c.srUUID()
        let (m, config) = try mountServerPath(c)
        let fs = NFSFileSystem(mount: m)
        let dir = config.srDirectory(sr)
        do {
            if fs.isDirectory(dir) {
                let entries = try fs.nfs.list(dir)
                if config.noSubdirectory ? entries.contains(where: { $0.hasSuffix(".vhd") }) : !entries.isEmpty {
                    throw SMAPIError(.SRExists, opterr: "\(config.serverPath ?? "")\(dir) is not empty")
                }
            } else {
                try fs.makeDirectory(dir)
            }
            if !config.noSubdirectory { try fs.restrict(dir) }
            // SharedFileSR's writability check: a uuid-named file made and removed.
            let probe = (dir == "/" ? "" : dir) + "/" + VDIName.newUUID()
            _ = try fs.nfs.create(probe)
            try fs.nfs.remove(probe)
        } catch let e as NFSError {
            if case let .failed(_, _, errno, _) = e, errno == EROFS || errno == EACCES || errno == EPERM {
                throw SMAPIError(.SharedFileSystemNoWrite, opterr: e.description)
            }
            throw SMAPIError(.NFSCreate, opterr: e.description)
        }
    }

    /// Removes the (empty: the service checked) SR directory (76 NFSDelete when it cannot).
    public func delete(_ c: DriverContext) throws {
        let sr = try c.srUUID()
        let (m, config) = try mountServerPath(c)
        guard !config.noSubdirectory else { return }
        let fs = NFSFileSystem(mount: m)
        do {
            for leftover in try fs.nfs.list("/" + sr) where leftover.hasPrefix(".") { try fs.nfs.remove("/" + sr + "/" + leftover) }
            try fs.removeDirectory("/" + sr)
        } catch let e as NFSError {
            throw SMAPIError(.NFSDelete, opterr: e.description)
        }
    }

    /// Mounts `serverpath` and finds the SR's directory there (73 NFSMount when it is missing).
    public func attach(_ c: DriverContext) throws {
        let sr = try c.srUUID()
        let (m, config) = try mountServerPath(c)
        guard NFSFileSystem(mount: m).isDirectory(config.srDirectory(sr)) else {
            throw SMAPIError(.NFSMount, opterr: "\(config.server):\(config.serverPath ?? "")\(config.srDirectory(sr)) does not exist")
        }
    }

    /// Nothing is mounted in the kernel: nothing to undo.
    public func detach(_ c: DriverContext) throws {}

    /// The SR's directory on the export.
    public func container(_ c: DriverContext) throws -> any VolumeContainer {
        let sr = try c.srUUID()
        let (m, config) = try mountServerPath(c)
        do {
            return try DirectoryContainer(directory: config.srDirectory(sr), fileSystem: NFSFileSystem(mount: m))
        } catch StorageError.notADirectory {
            throw SMAPIError(.SRUnavailable, opterr: "\(config.server):\(config.serverPath ?? "")\(config.srDirectory(sr)) does not exist")
        }
    }

    /// NFSSR's `generate_config`: the file SR's document plus `sr_sm_config` and `sr_other_config`.
    public func generateConfig(_ c: DriverContext, vdi: String) throws -> String {
        let sm = c.request.srSMConfig ?? SMAPIStringMap()
        let other = SMAPIStringMap(c.srOtherConfig().sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
        return try attachFromConfigDocument(c, vdi: vdi, extra: [XMLRPCMember("sr_sm_config", sm.xmlrpcValue),
                                                                  XMLRPCMember("sr_other_config", other.xmlrpcValue)])
    }
}
