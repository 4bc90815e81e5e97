import Foundation
@testable import EXTDriver

/// A loop device over a sparse image file, for a real ext4 SR (`truncate`, `losetup -f --show`).
/// `detach()` must always run; it is idempotent.
final class LoopDevice: @unchecked Sendable {
    /// `/dev/loopN`.
    let device: String
    /// The backing file.
    let image: String
    private var attached = true

    /// Creates `image` of `size` bytes and attaches it.
    init(image: String, size: UInt64) throws {
        self.image = image
        try Shell.run("/usr/bin/truncate", ["-s", String(size), image])
        do {
            device = try Shell.run("/sbin/losetup", ["-f", "--show", image]).trimmingCharacters(in: .whitespacesAndNewlines)
        } catch {
            unlink(image)
            throw error
        }
    }

    /// Unmounts anything still mounted from the device, detaches it and removes the image.
    func detach() {
        guard attached else { return }
        attached = false
        for mountPoint in Shell.mountPoints(of: device) { _ = try? Shell.run("/bin/umount", ["-l", mountPoint]) }
        _ = try? Shell.run("/sbin/losetup", ["-d", device])
        unlink(image)
    }

    deinit { detach() }

    /// nil when loop devices and ext4 mounts work here, else why not (checked once, with a 16 MiB probe).
    static let unavailableReason: String? = {
        guard getuid() == 0 else { return "not root: losetup and mount need root" }
        for tool in ["/sbin/losetup", "/sbin/mkfs.ext4", "/bin/mount", "/bin/umount", "/usr/bin/truncate"]
        where access(tool, X_OK) != 0 {
            return "\(tool) is missing"
        }
        let dir = NSTemporaryDirectory() + "swiftsm-loop-probe-\(getpid())"
        try? FileManager.default.createDirectory(atPath: dir + "/m", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let loop: LoopDevice
        do { loop = try LoopDevice(image: dir + "/img", size: 16 << 20) } catch {
            return "losetup is impossible here: \(error)"
        }
        defer { loop.detach() }
        do {
            try Shell.run("/sbin/mkfs.ext4", ["-F", "-q", loop.device])
            try Shell.run("/bin/mount", ["-t", "ext4", loop.device, dir + "/m"])
            try Shell.run("/bin/umount", [dir + "/m"])
        } catch {
            return "mounting an ext4 loop device is impossible here: \(error)"
        }
        return nil
    }()
}

/// Runs system tools for the test harness, through the driver's own runner.
enum Shell {
    /// Runs `tool args`, returns stdout; throws on a non-zero status.
    @discardableResult
    static func run(_ tool: String, _ args: [String]) throws -> String {
        try System.run(tool, args)
    }

    /// Mount points of `device` (or anything under `prefix`) in /proc/mounts, deepest first.
    static func mountPoints(of device: String? = nil, under prefix: String? = nil) -> [String] {
        guard let mounts = try? String(contentsOfFile: "/proc/mounts", encoding: .utf8) else { return [] }
        var out: [String] = []
        for line in mounts.split(separator: "\n") {
            let f = line.split(separator: " ")
            guard f.count > 2 else { continue }
            let dev = String(f[0]), point = String(f[1]).replacingOccurrences(of: "\\040", with: " ")
            if let device, dev == device { out.append(point) }
            if let prefix, point.hasPrefix(prefix) { out.append(point) }
        }
        return out.sorted { $0.count > $1.count }
    }

    /// Whether something is mounted at `path`.
    static func isMounted(_ path: String) -> Bool { mountPoints(under: path).contains(path) }
}
