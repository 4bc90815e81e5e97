import Foundation
import SMCore
import VHD

/// The EXT SR: VHD files on a local ext4 filesystem. `device-config:device` names a block
/// device that `sr_create` formats and `sr_attach` mounts under the run directory;
/// `device-config:path` names an existing directory used as it is.
public final class EXTDriver: SRDriver {
    /// The file that marks a directory or filesystem as SR `<uuid>`.
    static let marker = ".swiftsm-sr"

    /// A driver instance.
    public init() {}

    /// `ext`: `smdriver --driver ext`, installed as `EXTSR`.
    public let type = "ext"

    /// What `sr_get_driver_info` answers: only capabilities that really work.
    public let info = SMAPIDriverInfo(
        name: "Local EXT4 VHD", description: "SR plugin which represents disks as VHD files stored on a local EXT4 filesystem",
        vendor: "SwiftSM", copyright: "(C) 2026 SwiftSM authors", driverVersion: "1.0", requiredAPIVersion: "1.0",
        capabilities: ["SR_PROBE", "SR_UPDATE", "VDI_CREATE", "VDI_DELETE", "VDI_CLONE", "VDI_SNAPSHOT", "VDI_RESIZE",
                       "VDI_GENERATE_CONFIG", "VDI_UPDATE", "VDI_RESET_ON_BOOT/2", "VDI_COMPOSE", "VDI_INTRODUCE",
                       "VDI_ATTACH", "VDI_DETACH", "VDI_ACTIVATE", "VDI_DEACTIVATE", "ATOMIC_PAUSE",
                       "VDI_CONFIG_CBT", "THIN_PROVISIONING"],
        configuration: [.init(key: "device", description: "local device path (required) (e.g. /dev/sda3)"),
                        .init(key: "path", description: "an existing directory to use instead of a device")])

    /// `storage-type` of attach-from-config results.
    public let storageType = "ext"

    /// `device` or `path` must be present (90 otherwise); checked by `validate`.
    public var requiredKeys: [(key: String, missing: SMErrorCode)] { [] }

    /// Where this SR's files live: the mount point (device) or the directory (path).
    func location(_ c: DriverContext) throws -> Location {
        if let path = c.config("path") { return .path(path) }
        return .device(try device(c), mountPoint: c.run.mountPoint(sr: try c.srUUID()))
    }

    /// `device-config:device`, checked (90 when missing, 91 when not one absolute path).
    func device(_ c: DriverContext) throws -> String {
        guard let dev = c.config("device"), !dev.isEmpty else { throw SMAPIError(.ConfigDeviceMissing) }
        guard !dev.contains(","), dev.hasPrefix("/") else { throw SMAPIError(.ConfigDeviceInvalid, opterr: dev) }
        return dev
    }

    /// A device and its mount point, or a plain directory.
    enum Location {
        case device(String, mountPoint: String)
        case path(String)
        var directory: String {
            switch self { case let .device(_, m): m; case let .path(p): p }
        }
    }

    /// Lists the SR found on the device or directory as `<SRlist>`.
    public func probe(_ c: DriverContext) throws -> String {
        var uuids: [String] = []
        // sr_probe carries no sr_uuid: the device is probed without a mount point of its own.
        if let p = c.config("path") {
            if let u = Self.readMarker(p) { uuids.append(u) }
        } else {
            let dev = try device(c)
            try checkDevice(dev)
            if let mounted = System.mountPoint(of: dev) {
                // Already mounted (an attached SR): a second, read-only mount would be refused.
                if let u = Self.readMarker(mounted) { uuids.append(u) }
                return Self.srList(uuids)
            }
            let tmp = c.run.root + "/probe-\(getpid())"
            try FileManager.default.createDirectory(atPath: tmp, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: tmp) }
            if (try? System.run("/bin/mount", ["-o", "ro", "-t", "ext4", dev, tmp])) != nil {
                if let u = Self.readMarker(tmp) { uuids.append(u) }
                _ = try? System.run("/bin/umount", [tmp])
            }
        }
        return Self.srList(uuids)
    }

    /// The `<SRlist>` document of `sr_probe`.
    static func srList(_ uuids: [String]) -> String {
        "<?xml version=\"1.0\" ?>\n<SRlist>\n" + uuids.map { "\t<SR>\n\t\t<UUID>\($0)</UUID>\n\t</SR>\n" }.joined() + "</SRlist>\n"
    }

    /// Formats the device ext4 (refusing the root device, and a device with a filesystem unless
    /// `device-config:force=true`), or prepares the directory; writes the SR marker.
    public func create(_ c: DriverContext, size: UInt64) throws {
        let sr = try c.srUUID()
        switch try location(c) {
        case let .path(p):
            try FileManager.default.createDirectory(atPath: p, withIntermediateDirectories: true)
            try DirectoryContainer.restrict(p)
            if let existing = Self.readMarker(p) { throw SMAPIError(.SRExists, opterr: "directory holds SR \(existing)") }
            let entries = try FileManager.default.contentsOfDirectory(atPath: p)
            guard entries.isEmpty else { throw SMAPIError(.FileSRCreate, opterr: "\(p) is not empty") }
            try Self.writeMarker(p, sr)
        case let .device(dev, mountPoint):
            try checkDevice(dev)
            if try System.isRootDevice(dev) { throw SMAPIError(.Rootdev, opterr: dev) }
            if try System.hasFilesystem(dev) && c.config("force") != "true" {
                throw SMAPIError(.SRInUse, opterr: "\(dev) holds a filesystem; set device-config:force=true to overwrite it")
            }
            do { try System.run("/sbin/mkfs.ext4", ["-F", "-q", "-m", "0", dev]) } catch {
                throw SMAPIError(.LVMFilesystem, opterr: "\(error)")
            }
            try mount(dev, at: mountPoint)
            defer { _ = try? System.run("/bin/umount", [mountPoint]) }
            try DirectoryContainer.restrict(mountPoint)
            try Self.writeMarker(mountPoint, sr)
        }
    }

    /// Removes the SR marker (the SR must be empty; the service checked), unmounting a device.
    public func delete(_ c: DriverContext) throws {
        let loc = try location(c)
        try? FileManager.default.removeItem(atPath: loc.directory + "/" + Self.marker)
        if case let .device(_, m) = loc, System.isMounted(m) {
            do { try System.run("/bin/umount", [m]) } catch { throw SMAPIError(.SRInUse, opterr: "\(error)") }
        }
    }

    /// Mounts the device (after fsck -a) or checks the directory; the marker must name this SR.
    public func attach(_ c: DriverContext) throws {
        let sr = try c.srUUID()
        let loc = try location(c)
        if case let .device(dev, m) = loc, !System.isMounted(m) {
            try checkDevice(dev)
            _ = try? System.run("/sbin/fsck.ext4", ["-p", dev])
            try mount(dev, at: m)
        }
        guard let found = Self.readMarker(loc.directory) else {
            throw SMAPIError(.SRUnavailable, opterr: "\(loc.directory) holds no SR")
        }
        guard found == sr else { throw SMAPIError(.SRUnavailable, opterr: "\(loc.directory) holds SR \(found), not \(sr)") }
        // SRs made before directories were restricted, or a mount over a 0755 root, are closed now.
        try DirectoryContainer.restrict(loc.directory)
    }

    /// Unmounts a device SR.
    public func detach(_ c: DriverContext) throws {
        if case let .device(_, m) = try location(c), System.isMounted(m) {
            do { try System.run("/bin/umount", [m]) } catch { throw SMAPIError(.SRInUse, opterr: "\(error)") }
        }
    }

    /// The directory container of the attached SR.
    public func container(_ c: DriverContext) throws -> any VolumeContainer {
        let loc = try location(c)
        if case let .device(_, m) = loc, !System.isMounted(m) { throw SMAPIError(.SRUnavailable, opterr: "not attached") }
        guard Self.readMarker(loc.directory) == (try c.srUUID()) else {
            throw SMAPIError(.SRUnavailable, opterr: "\(loc.directory) does not hold this SR")
        }
        return try DirectoryContainer(directory: loc.directory)
    }

    func checkDevice(_ dev: String) throws {
        var st = stat()
        guard stat(dev, &st) == 0 else { throw SMAPIError(.InvalidDev, opterr: dev) }
        guard (st.st_mode & S_IFMT) == S_IFBLK else { throw SMAPIError(.ConfigDeviceInvalid, opterr: "\(dev) is not a block device") }
    }

    func mount(_ dev: String, at m: String) throws {
        try FileManager.default.createDirectory(atPath: m, withIntermediateDirectories: true)
        do { try System.run("/bin/mount", ["-t", "ext4", dev, m]) } catch {
            throw SMAPIError(.LVMMount, opterr: "\(error)")
        }
    }

    static func readMarker(_ dir: String) -> String? {
        guard let d = FileManager.default.contents(atPath: dir + "/" + marker),
              let s = String(data: d, encoding: .utf8)?.trimmingCharacters(in: .whitespacesAndNewlines), VDIName.isUUID(s) else { return nil }
        return s
    }

    static func writeMarker(_ dir: String, _ uuid: String) throws {
        try DirectoryContainer(directory: dir).writeFileAtomically(marker, Array((uuid + "\n").utf8))
    }
}
