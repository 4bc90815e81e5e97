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
        _ = try Shell.run("/bin/bash", [Self.script, "stop", state])
    }

    /// Starts the server again with the same settings.
    func start() throws {
        guard let state else { throw UnexpectedAnswer(description: "SWIFTSM_TEST_NFS_STATE is not set") }
        _ = try Shell.run("/bin/bash", [Self.script, "start", state, String(port), export])
    }
}
