import Foundation

/// The NFS-Ganesha server `scripts/with-nfs-server.sh` runs beside the tests, from
/// `SWIFTSM_TEST_NFS=<host>:<nfs port>:<mount port>:<exported directory>`; the exported
/// directory is on this host, so tests read and damage the server's files directly.
struct NFSTestServer: Sendable {
    /// Address of the server.
    let host: String
    /// Its NFS port.
    let port: Int
    /// Its MOUNT port.
    let mountPort: Int
    /// The exported directory (also its path on the server).
    let export: String
    /// The server's state directory (for stopping and starting it again).
    let state: String?

    /// The mount options that name the ports (`device-config:options`).
    var options: String { "port=\(port),mountport=\(mountPort)" }

    /// The server of this test run, nil when the tests run without one.
    static let current: NFSTestServer? = {
        let env = ProcessInfo.processInfo.environment
        guard let spec = env["SWIFTSM_TEST_NFS"] else { return nil }
        let parts = spec.split(separator: ":", maxSplits: 3).map(String.init)
        guard parts.count == 4, let port = Int(parts[1]), let mount = Int(parts[2]) else { return nil }
        return NFSTestServer(host: parts[0], port: port, mountPort: mount, export: parts[3], state: env["SWIFTSM_TEST_NFS_STATE"])
    }()

    /// The server, or a failure saying how to run the tests with one.
    static func require() throws -> NFSTestServer {
        guard let s = current else {
            throw UnexpectedAnswer(description: "no NFS test server: run the tests through scripts/with-nfs-server.sh (make test does)")
        }
        return s
    }

    /// The package's `scripts/nfs-test-server.sh`.
    static var script: String { E2EFixtures.packageRoot.appendingPathComponent("scripts/nfs-test-server.sh").path }

    /// Stops the server (SIGTERM, as an administrator would; its exported files stay).
    func stop() throws {
        guard let state else { throw UnexpectedAnswer(description: "SWIFTSM_TEST_NFS_STATE is not set") }
        try Self.runScript(["stop", state], log: state + ".log")
    }

    /// Starts the server again with the same settings.
    func start() throws {
        guard let state else { throw UnexpectedAnswer(description: "SWIFTSM_TEST_NFS_STATE is not set") }
        try Self.runScript(["start", state, String(port), export], log: state + ".log")
    }

    /// Runs the script with its output in `log`, not in pipes of ours: the server it starts
    /// lives on after it, and must not hold a pipe the caller waits to see closed.
    static func runScript(_ arguments: [String], log: String) throws {
        let status = try Spawned.run(["/bin/bash", script] + arguments, output: log)
        guard status == 0 else {
            let tail = (try? String(contentsOfFile: log, encoding: .utf8)).map { String($0.suffix(800)) } ?? ""
            throw UnexpectedAnswer(description: "nfs-test-server.sh \(arguments.first ?? "") exited \(status)\n\(tail)")
        }
    }

}

extension NFSTestServer {
    /// A server of the caller's own (for tests that stop it): a new NFS-Ganesha instance on a
    /// free pair of ports exporting `root/export`, with its state in `root/state`. `stop()` it
    /// at the end.
    static func startPrivate(root: String) throws -> NFSTestServer {
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        var last: Error?
        for port in stride(from: 21049, to: 21999, by: 2) {
            // A port another test of this run had: its server may be stopped for a restart.
            guard claimedPorts.claim(port) else { continue }
            let busy = (try? Shell.run("/bin/ss", ["-Htln", "sport = :\(port) or sport = :\(port + 1)"])) ?? ""
            guard busy.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty else { continue }
            let server = NFSTestServer(host: "127.0.0.1", port: port, mountPort: port + 1, export: root + "/export", state: root + "/state")
            do { try server.start(); return server } catch { last = error; continue }
        }
        throw UnexpectedAnswer(description: "no free port pair for a private NFS server: \(last.map { "\($0)" } ?? "all busy")")
    }
}

/// The ports private NFS servers of this test run were given: never given twice, so that a test
/// that stops its server to restart it finds its port free again.
private let claimedPorts = PortClaims()

/// A set of ports under a lock.
private final class PortClaims: @unchecked Sendable {
    private let lock = NSLock()
    private var ports: Set<Int> = []

    /// Whether `port` was not claimed before (it is now).
    func claim(_ port: Int) -> Bool { lock.withLock { ports.insert(port).inserted } }
}
