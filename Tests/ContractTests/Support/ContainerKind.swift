import Foundation
import LVMoISCSIDriver
import NFSDriver
import SMCore
import Testing
import TestContainers
import VHD

/// The containers the contract suite runs against.
enum ContainerKind: String, Codable, Sendable, CaseIterable, CustomTestStringConvertible {
    /// A file SR: `DirectoryContainer` on ext4 on a loop device.
    case directory
    /// LV semantics: `ExtentContainer` over one preallocated file.
    case extents
    /// A file SR over NFS: `DirectoryContainer` on `NFSFileSystem`, the directory `location` of
    /// the NFS-Ganesha export `scripts/with-nfs-server.sh` runs beside the tests (mounted as
    /// `serverpath`, as the NFS driver mounts it).
    case nfs
    /// An LVHD SR: `LVHDContainer` over the LVM2 PV in a sparse file (`FileStore`), as it will be
    /// over an iSCSI LUN.
    case lvhd

    var testDescription: String { rawValue }

    /// Every kind, or those `SWIFTSM_CONTRACT_KINDS` names (comma-separated, e.g. `lvhd`): test
    /// filters cannot pick a parameterized case.
    static var allCases: [ContainerKind] {
        let all: [ContainerKind] = [.directory, .extents, .nfs, .lvhd]
        guard let only = ProcessInfo.processInfo.environment["SWIFTSM_CONTRACT_KINDS"], !only.isEmpty else { return all }
        let names = Set(only.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        return all.filter { names.contains($0.rawValue) }
    }

    /// A new container (as a new process would rebuild it) over `location`: the SR directory,
    /// the extent group's backing file, the SR directory the NFS server exports, or the PV's file.
    func open(_ location: String) throws -> any VolumeContainer {
        switch self {
        case .directory: return try DirectoryContainer(directory: location)
        case .extents: return try ExtentContainer(backing: location)
        case .nfs:
            let server = try Self.nfsServer()
            let mount = try NFSMount(target: NFSTarget(server: server.host, export: location, nfsPort: server.port,
                                                       mountPort: server.mountPort, timeoutSeconds: 10))
            return try DirectoryContainer(directory: "/", fileSystem: NFSFileSystem(mount: mount))
        case .lvhd: return try LVHDContainer(store: FileStore(path: location, writable: true))
        }
    }

    /// The test NFS server of `SWIFTSM_TEST_NFS=<host>:<port>:<mount port>:<export>`.
    static func nfsServer() throws -> (host: String, port: Int, mountPort: Int, export: String) {
        let parts = (ProcessInfo.processInfo.environment["SWIFTSM_TEST_NFS"] ?? "").split(separator: ":", maxSplits: 3).map(String.init)
        guard parts.count == 4, let port = Int(parts[1]), let mount = Int(parts[2]) else {
            throw Tool.Failure(description: "no NFS test server: run through scripts/with-nfs-server.sh (make test does)")
        }
        return (parts[0], port, mount, parts[3])
    }
}
