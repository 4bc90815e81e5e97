import Foundation
import Testing
import VHD

// lvm2's own tools on a loop device, activation off, with a private configuration: how the
// LVM, LVHD and LVM-over-iSCSI tests check that lvm2 reads what our engine writes (and write
// VGs our engine must read).

/// What one command printed.
public struct ToolResult: Sendable {
    /// Exit status.
    public let status: Int32
    /// Standard output.
    public let stdout: String
    /// Standard error.
    public let stderr: String
    /// stderr without the line every command prints when activation is off.
    public var warnings: [String] {
        stderr.split(separator: "\n").map(String.init).filter {
            !$0.contains("Activation disabled") && !$0.trimmingCharacters(in: .whitespaces).isEmpty
        }
    }
}

/// A command that failed.
public struct ToolFailure: Error, CustomStringConvertible {
    /// What failed.
    public let description: String
    /// A failure described by `description`.
    public init(description: String) { self.description = description }
}

/// Runs `argv` and collects its output.
public func run(_ argv: [String], environment: [String: String] = [:]) throws -> ToolResult {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    p.arguments = argv
    var env = ProcessInfo.processInfo.environment
    for (k, v) in environment { env[k] = v }
    p.environment = env
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    p.standardInput = FileHandle.nullDevice
    try p.run()
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return ToolResult(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
}

/// Whether lvm2's tools are installed.
public let lvm2Installed = FileManager.default.isExecutableFile(atPath: "/sbin/lvm") || FileManager.default.isExecutableFile(atPath: "/usr/sbin/lvm")

/// A sparse image file, attachable to a loop device with a private lvm2 configuration that sees
/// only that device and never activates anything. `close()` detaches and deletes.
public final class LoopPV: @unchecked Sendable {
    /// The private configuration's directory.
    public let dir: String
    /// The image file.
    public let image: String
    /// The loop device while attached.
    public private(set) var device: String = ""
    /// Whether `close()` deletes the image (not an image it was given).
    private let ownsImage: Bool
    /// Whether the loop device is read-only.
    private var readOnly = false

    /// A sparse file of `size` bytes (optionally filled by `prepare` before attaching).
    public init(size: UInt64, prepare: ((FileStore) throws -> Void)? = nil) throws {
        dir = NSTemporaryDirectory() + "lvmtest-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir + "/lock", withIntermediateDirectories: true)
        image = dir + "/pv.img"
        ownsImage = true
        let store = try FileStore.create(path: image)
        try store.resize(to: size)
        try prepare?(store)
        try store.sync()
    }

    /// An existing image (a LUN's backing file), attached read-only unless `writable`, and
    /// left in place by `close()`.
    public init(existing image: String, writable: Bool = false) throws {
        dir = NSTemporaryDirectory() + "lvmtest-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir + "/lock", withIntermediateDirectories: true)
        self.image = image
        ownsImage = false
        readOnly = !writable
    }

    /// Attaches the image (`losetup -f --show`) and writes the lvm.conf accepting only that device.
    public func attach() throws {
        let r = try run(["losetup", "-f", "--show"] + (readOnly ? ["-r"] : []) + [image])
        guard r.status == 0 else { throw ToolFailure(description: "losetup: \(r.stderr)") }
        device = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        let conf = """
        devices {
            filter = [ "a|^\(device)$|", "r|.*|" ]
            global_filter = [ "a|^\(device)$|", "r|.*|" ]
            obtain_device_list_from_udev = 0
            external_device_info_source = "none"
            use_devicesfile = 0
            hints = "none"
        }
        global {
            activation = 0
            use_lvmlockd = 0
            use_lvmpolld = 0
            event_activation = 0
            locking_dir = "\(dir)/lock"
        }
        activation {
            udev_sync = 0
            udev_rules = 0
            monitoring = 0
        }
        backup {
            backup = 0
            archive = 0
            backup_dir = "\(dir)/backup"
            archive_dir = "\(dir)/archive"
        }
        """
        try conf.write(toFile: dir + "/lvm.conf", atomically: true, encoding: .utf8)
    }

    /// Detaches the loop device.
    public func detach() {
        if !device.isEmpty { _ = try? run(["losetup", "-d", device]); device = "" }
    }

    /// Detaches and removes the files.
    public func close() {
        detach()
        try? FileManager.default.removeItem(atPath: dir)
        if ownsImage { try? FileManager.default.removeItem(atPath: image) }
    }

    /// Runs `lvm <args>` with the private configuration.
    public func lvm(_ args: [String]) throws -> ToolResult {
        try run(["lvm"] + args, environment: ["LVM_SYSTEM_DIR": dir, "LVM_SUPPRESS_FD_WARNINGS": "1"])
    }

    /// Runs a reporting command with `--reportformat json` (sizes in bytes) and returns the rows of
    /// its first report; expects no warnings.
    public func report(_ args: [String]) throws -> [[String: String]] {
        let r = try lvm(args + ["--reportformat", "json", "--units", "b", "--nosuffix"])
        guard r.status == 0 else { throw ToolFailure(description: "lvm \(args): \(r.stderr)") }
        #expect(r.warnings.isEmpty, "lvm \(args.joined(separator: " ")) warned: \(r.warnings)")
        let json = try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any]
        let reports = json?["report"] as? [[String: Any]] ?? []
        guard let first = reports.first, let rows = first.values.first as? [[String: String]] else { return [] }
        return rows
    }

    /// An open store on the image file.
    public func store(writable: Bool = true) throws -> FileStore { try FileStore(path: image, writable: writable) }
}
