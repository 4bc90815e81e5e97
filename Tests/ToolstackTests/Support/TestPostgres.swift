import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A real PostgreSQL server (Debian's packages) started for a test by the project's own script
/// (`scripts/postgres-test-server.sh`) in a fresh directory on a free port, and stopped after.
final class TestPostgres: @unchecked Sendable {
    let directory: String
    let port: Int
    private static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("scripts/postgres-test-server.sh").path

    /// Starts a server, on another random port if the first one it tries is taken (three tries).
    init() throws {
        var template = Array("/tmp/pg-XXXXXX".utf8CString)
        guard let made = mkdtemp(&template) else { throw TestToolstack.Failure(description: "mkdtemp failed") }
        directory = String(cString: made)
        var tried: [String] = []
        var port = 0
        for _ in 0..<3 {
            port = Int.random(in: 40000..<60000)
            let (status, out, err) = try Executables.run(Self.script, ["start", directory, String(port)])
            if status == 0 { break }
            let log = (try? String(contentsOfFile: directory + "/server.log", encoding: .utf8)) ?? ""
            tried.append("port \(port): \(out) \(err) \(log.split(separator: "\n").suffix(3).joined(separator: " | "))")
            _ = try? Executables.run(Self.script, ["stop", directory])
            try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        self.port = port
        guard tried.count < 3 else { throw TestToolstack.Failure(description: "postgres did not start: \(tried)") }
    }

    /// A fresh database on the server; its URL.
    func database() throws -> String {
        let name = "t" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "").prefix(12)
        let (status, _, err) = try Executables.run("/usr/bin/psql", ["-h", "127.0.0.1", "-p", String(port), "-U", "swiftsm", "-d", "postgres",
                                                                     "-c", "CREATE DATABASE \(name)"])
        guard status == 0 else { throw TestToolstack.Failure(description: "createdb: \(err)") }
        return "postgres://swiftsm@127.0.0.1:\(port)/\(name)"
    }

    /// Stops the server and removes its files.
    func stop() { _ = try? Executables.run(Self.script, ["stop", directory]) }
}
