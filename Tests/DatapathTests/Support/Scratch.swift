import Foundation
import Logging
import SMCore
import Testing
import VHD

/// A temporary folder with a short path (unix socket paths must fit in 107 bytes), removed by `remove()`.
final class Scratch: @unchecked Sendable {
    /// The folder, `/tmp/dp.XXXXXX`.
    let path: String
    /// POSIX files.
    let provider = FileStoreProvider()

    init() throws {
        var template = Array("/tmp/dp.XXXXXX".utf8CString)
        guard let p = mkdtemp(&template) else { throw POSIXError(.EIO) }
        path = String(cString: p)
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }

    /// Creates an empty dynamic VHD of `mib` MiB at `name` and returns its path.
    @discardableResult
    func dynamicVHD(_ name: String, mib: UInt64) throws -> String {
        let p = path + "/" + name
        try Create.dynamic(at: p, size: mib << 20, provider: provider)
        return p
    }

    /// Writes `bytes` at `offset` of the chain of `vhd` with the engine.
    func write(_ vhd: String, _ bytes: [UInt8], at offset: UInt64) throws {
        let chain = try VHDChain(path: vhd, provider: provider, writable: true)
        try chain.write(bytes, at: offset)
        try chain.flush()
    }

    /// Reads `count` bytes at `offset` of the chain of `vhd` with the engine.
    func read(_ vhd: String, count: Int, at offset: UInt64) throws -> [UInt8] {
        try VHDChain(path: vhd, provider: provider).read(count: count, at: offset)
    }

    /// Writes `bytes` to a plain file.
    func file(_ name: String, _ bytes: [UInt8]) throws -> String {
        let p = path + "/" + name
        try Data(bytes).write(to: URL(fileURLWithPath: p))
        return p
    }

    /// `vhd check` of `vhd` with the engine: the problems found.
    func problems(_ vhd: String) -> [String] {
        Check.run(path: vhd, provider: provider).flatMap(\.problems)
    }
}

/// Deterministic pseudo-random bytes.
func pattern(_ count: Int, seed: UInt64) -> [UInt8] {
    var x = seed &* 0x9E37_79B9_7F4A_7C15 | 1
    return (0..<count).map { _ in
        x ^= x << 13; x ^= x >> 7; x ^= x << 17
        return UInt8(truncatingIfNeeded: x)
    }
}

/// A datapath served in this process from `scratch`, with its export URI.
struct LocalDatapath {
    let datapath: Datapath
    let directory: DatapathDirectory
    let export: String

    /// Serves `leaf` (read-only when asked, TCP too when asked).
    init(_ scratch: Scratch, leaf: String, name: String = "dp", export: String = "disk", readOnly: Bool = false,
         tcp: Bool = false) throws {
        directory = DatapathDirectory(path: scratch.path + "/" + name)
        self.export = export
        let config = DatapathConfiguration(driver: "ext", srUUID: "sr", vdiUUID: export, directory: directory,
                                           readOnly: readOnly, tcpPort: tcp ? 0 : nil,
                                           run: RunDirectory(root: scratch.path + "/run"))
        datapath = try Datapath(configuration: config, container: try DirectoryContainer(directory: StorePath.directory(of: leaf)),
                                leaf: StorePath.basename(leaf),
                                log: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        try datapath.start()
    }

    /// `nbd+unix:///<export>?socket=…`.
    var uri: String { directory.uri(export: export) }

    /// The control socket client.
    var control: DatapathControlClient { DatapathControlClient(socketPath: directory.controlSocket, timeout: 30) }

    func stop() { datapath.shutdown() }
}

/// Polls `condition` every 10 ms for up to `timeout` seconds.
func eventually(timeout: Double = 5, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try condition() { return true }
        usleep(10_000)
    }
    return try condition()
}
