import Foundation
import TestSupport
import VHD

/// Where the project's test data lives, and helpers to use it.
enum Fixtures {
    /// `<package>/fixtures`.
    static let root: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<4 { url.deleteLastPathComponent() }
        return url.appendingPathComponent("fixtures").path
    }()

    /// `<package>/fixtures/vhd`.
    static let vhd = root + "/vhd"

    /// MANIFEST.json of the VHD fixtures.
    nonisolated(unsafe) static let manifest: [String: Any] = {
        let data = try! Data(contentsOf: URL(fileURLWithPath: vhd + "/MANIFEST.json"))
        return try! JSONSerialization.jsonObject(with: data) as! [String: Any]
    }()

    /// The manifest's file entries.
    static var files: [String: [String: Any]] { manifest["files"] as! [String: [String: Any]] }

    /// A fresh scratch directory.
    static func scratch(_ name: String = "t") -> String {
        let dir = NSTemporaryDirectory() + "swiftsm-\(name)-\(UUID().uuidString.prefix(8))"
        try! FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// Copies a fixture folder into a scratch directory (chains must travel together).
    static func copyGroup(_ group: String) -> String {
        let dir = scratch(group)
        for name in try! FileManager.default.contentsOfDirectory(atPath: vhd + "/" + group) {
            try! FileManager.default.copyItem(atPath: vhd + "/" + group + "/" + name, toPath: dir + "/" + name)
            chmod(dir + "/" + name, 0o644)
        }
        return dir
    }

    /// SHA-256 of the whole virtual disk of the chain at `path`, read in 1 MiB pieces.
    static func contentHash(_ chain: VHDChain) throws -> String {
        var h = SHA256()
        var off: UInt64 = 0
        while off < chain.virtualSize {
            let n = Int(min(1 << 20, chain.virtualSize - off))
            h.update(try chain.read(count: n, at: off))
            off += UInt64(n)
        }
        return h.finalize()
    }
}
