import Foundation

/// A real ext4 file system on a loop device over a sparse image file, mounted: what a local
/// file SR runs on. `detach()` unmounts it, detaches the loop device and removes the image; it
/// must always run (it is idempotent, and `deinit` runs it too).
final class LoopFileSystem: @unchecked Sendable {
    /// `/dev/loopN`.
    let device: String
    /// The backing image.
    let image: String
    /// Where it is mounted.
    let mountPoint: String
    private var attached = true

    /// Creates `image` of `size` bytes, attaches it (`losetup -f --show`), formats it ext4 and
    /// mounts it on `mountPoint` (created). Whatever was set up is undone when a step fails.
    init(image: String, mountPoint: String, size: UInt64) throws {
        self.image = image
        self.mountPoint = mountPoint
        try FileManager.default.createDirectory(atPath: mountPoint, withIntermediateDirectories: true)
        guard FileManager.default.createFile(atPath: image, contents: nil), truncate(image, off_t(size)) == 0 else {
            throw Tool.Failure(description: "cannot make \(image)")
        }
        do {
            device = try Tool.check("losetup", ["-f", "--show", image]).trimmingCharacters(in: .whitespacesAndNewlines)
        } catch {
            unlink(image)
            throw error
        }
        do {
            try Tool.check("mkfs.ext4", ["-F", "-q", device])
            try Tool.check("mount", ["-t", "ext4", device, mountPoint])
        } catch {
            detach()
            throw error
        }
    }

    /// Unmounts, detaches the loop device, removes the image.
    func detach() {
        guard attached else { return }
        attached = false
        if (try? Tool.run("umount", [mountPoint]))?.ok != true { _ = try? Tool.run("umount", ["-l", mountPoint]) }
        _ = try? Tool.run("losetup", ["-d", device])
        unlink(image)
    }

    deinit { detach() }

    /// nil when loop devices and ext4 mounts can be had here, else why not (probed once).
    static let unavailableReason: String? = {
        guard getuid() == 0 else { return "not root: losetup and mount need root" }
        for tool in ["losetup", "mkfs.ext4", "mount", "umount"] where Tool.which(tool) == nil { return "\(tool) is missing" }
        let dir = "/tmp/ct-probe-\(getpid())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        do {
            let fs = try LoopFileSystem(image: dir + "/img", mountPoint: dir + "/m", size: 32 << 20)
            fs.detach()
        } catch {
            return "an ext4 loop device is impossible here: \(error)"
        }
        return nil
    }()
}
