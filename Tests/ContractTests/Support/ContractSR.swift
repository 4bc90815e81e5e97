import Foundation
import LVMoISCSIDriver
import Logging
import SMCore
import TestContainers
import VHD

/// One SR for one contract test: the container's storage (an ext4 loop device, or a
/// preallocated extent group file) under a short temporary root, a run directory, and new
/// container instances on demand, as each process (smdriver, collector, data path) rebuilds its
/// own. `cleanup()` must always run: it unmounts and detaches what was attached.
final class ContractSR: @unchecked Sendable {
    /// Which container.
    let kind: ContainerKind
    /// `/tmp/ct.XXXXXX`, short enough for unix sockets below it.
    let root: String
    /// Where the container lives: the SR directory, or the group's backing file.
    let location: String
    /// The host's run directory for this SR (locks, collector status, datapath folders).
    let run: RunDirectory
    /// The SR uuid.
    let sr = VDIName.newUUID()
    /// The ext4 loop device of a directory container, when loop devices can be had.
    private(set) var loop: LoopFileSystem?
    private var cleaned = false

    /// Bytes of storage an SR gets unless a test asks for more.
    static let size: UInt64 = 512 << 20

    /// A new SR of `size` bytes in a container of `kind`.
    init(_ kind: ContainerKind, size: UInt64 = ContractSR.size) throws {
        self.kind = kind
        var template = Array("/tmp/ct.XXXXXX".utf8CString)
        guard let p = mkdtemp(&template) else { throw Tool.Failure(description: "mkdtemp failed") }
        root = String(cString: p)
        run = RunDirectory(root: root + "/r")
        _ = Self.sweepStaleRoots
        do {
            try Data("\(getpid())\n".utf8).write(to: URL(fileURLWithPath: root + "/owner"))
            try FileManager.default.createDirectory(atPath: run.root, withIntermediateDirectories: true)
            switch kind {
            case .directory:
                var directory = root + "/sr"
                if let why = LoopFileSystem.unavailableReason {
                    print("ContractTests: DirectoryContainer on a plain directory, not ext4 on a loop device: \(why)")
                } else {
                    let fs = try LoopFileSystem(image: root + "/ext4.img", mountPoint: root + "/m", size: size)
                    loop = fs
                    directory = fs.mountPoint + "/sr"
                }
                try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
                try DirectoryContainer.restrict(directory)
                location = directory
            case .extents:
                location = root + "/group.img"
                try ExtentGroup.format(location, name: "VG_XenStorage-" + sr, size: size)
            case .nfs:
                // The server's export is on this host: the SR's directory is made there.
                location = try ContainerKind.nfsServer().export + "/" + StorePath.basename(root) + "/" + sr
                try FileManager.default.createDirectory(atPath: location, withIntermediateDirectories: true)
                try DirectoryContainer.restrict(location)
            case .lvhd:
                // A sparse PV: the VG's metadata area (10 MiB) and MGT (4 MiB) come on top of `size`.
                location = root + "/pv.img"
                let store = try FileStore.create(path: location)
                try store.resize(to: size + (16 << 20))
                _ = try LVHDContainer.create(on: store, sr: sr)
                try store.sync()
            }
        } catch {
            loop?.detach()
            try? FileManager.default.removeItem(atPath: root)
            throw error
        }
    }

    deinit { cleanup() }

    /// Unmounts and detaches the loop device (if any) and removes every file.
    func cleanup() {
        guard !cleaned else { return }
        cleaned = true
        loop?.detach()
        try? FileManager.default.removeItem(atPath: root)
        if kind == .nfs { try? FileManager.default.removeItem(atPath: StorePath.directory(of: location)) }
    }

    /// Undoes what a test process that died without cleaning up left (its `/tmp/ct.*` root
    /// names a dead owner): its mount, its loop device, its files. Run once per process.
    static let sweepStaleRoots: Void = {
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/tmp")) ?? [] where name.hasPrefix("ct.") {
            let root = "/tmp/" + name
            guard let text = try? String(contentsOfFile: root + "/owner", encoding: .utf8),
                  let owner = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)),
                  owner != getpid(), kill(owner, 0) != 0 else { continue }
            if let mounts = try? String(contentsOfFile: "/proc/mounts", encoding: .utf8), mounts.contains(" \(root)/m ") {
                _ = try? Tool.run("umount", ["-l", root + "/m"])
            }
            if let loops = try? Tool.run("losetup", ["-j", root + "/ext4.img"]) {
                for line in loops.stdout.split(separator: "\n") {
                    if let dev = line.split(separator: ":").first { _ = try? Tool.run("losetup", ["-d", String(dev)]) }
                }
            }
            try? FileManager.default.removeItem(atPath: root)
        }
    }()

    /// A new container instance over the SR.
    func container() throws -> any VolumeContainer { try kind.open(location) }

    /// A repository over a new container instance.
    func repository() throws -> VHDRepository { VHDRepository(container: try container()) }

    /// A collector over `repo` (default: a new container instance), logging nowhere.
    func collector(_ repo: VHDRepository? = nil, options: GCOptions = GCOptions()) throws -> GarbageCollector {
        GarbageCollector(sr: sr, repo: try repo ?? repository(), run: run, log: Self.quietLog, options: options)
    }

    /// A logger that drops everything.
    static let quietLog = Logger(label: "contract", factory: { _ in SwiftLogNoOpLogHandler() })
}
