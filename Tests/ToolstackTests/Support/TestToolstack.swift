import Foundation
import Logging
import Toolstack
import XenAPIWire
#if canImport(Glibc)
import Glibc
#endif

/// A toolstackd served in the test process on a fresh short state directory, with the built
/// `smdriver` installed as its `EXTSR` plugin and an EXT SR directory ready to use.
final class TestToolstack: @unchecked Sendable {
    /// Why the fixture could not start.
    struct Failure: Error, CustomStringConvertible { let description: String }

    let root: String
    let configuration: ToolstackConfiguration
    let service: XenAPIService
    let server: XenAPIServer
    /// A directory for an EXT SR (`device-config:path=`).
    let srDirectory: String

    /// The password accepted over TCP.
    static let password = "s3cret-pw"

    /// Starts a toolstackd on `root` (a new directory unless given: restarts reuse one), TCP on an
    /// ephemeral port when `tcp` (HTTPS unless `plain`).
    init(root existing: String? = nil, tcp: Bool = false, plain: Bool = false, nbd: Bool = false,
         store makeStore: ((ToolstackConfiguration) throws -> any ObjectStore)? = nil) throws {
        setenv("SWIFTSM_GC_AUTOSTART", "0", 1)
        let smdriver = try Executables.require("smdriver")
        if let existing { root = existing } else {
            var template = Array("/tmp/tk-XXXXXX".utf8CString)
            guard let made = mkdtemp(&template) else { throw Failure(description: "mkdtemp failed") }
            root = String(cString: made)
        }
        let sm = root + "/sm"
        try? FileManager.default.createDirectory(atPath: sm, withIntermediateDirectories: true)
        try? FileManager.default.createSymbolicLink(atPath: sm + "/EXTSR", withDestinationPath: smdriver)
        srDirectory = root + "/srdir"
        try? FileManager.default.createDirectory(atPath: srDirectory, withIntermediateDirectories: true)
        let state = root + "/st"
        try? FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        try "root-password-hash = \(PasswordHash.make(Self.password))\n".write(toFile: state + "/toolstackd.conf", atomically: true, encoding: .utf8)
        var configuration = ToolstackConfiguration(stateDirectory: state, socketPath: root + "/sock/xapi", port: tcp ? 0 : nil,
                                                   smDirectory: sm, runDirectory: root + "/r")
        configuration.tls = !plain
        if nbd { configuration.nbdPort = 0 }
        self.configuration = configuration
        var log = Logger(label: "toolstackd-test")
        log.logLevel = .warning
        let store = try makeStore?(configuration) ?? SQLiteObjectStore(path: configuration.databaseFile)
        let db = try ObjectDatabase(store: store)
        service = try XenAPIService(db: db, configuration: configuration, log: log)
        server = XenAPIServer(service: service)
        try server.start()
        service.registerPlugins()
        service.reattachStorage()
    }

    /// A client on the local socket, logged in as root.
    func client() throws -> XenAPIConnection {
        let c = XenAPIConnection(endpoint: .unix(configuration.socketPath))
        _ = try c.login(user: "root", password: "")
        return c
    }

    /// Stops serving (the state directory stays, for a restart).
    func stop() { server.stop() }

    /// Stops serving and removes everything.
    func destroy() {
        stop()
        // Datapaths still running from an unfinished test: ask them to stop through their pid files.
        if let e = FileManager.default.enumerator(atPath: root + "/r") {
            for case let path as String in e where path.hasSuffix(".pid") {
                if let text = try? String(contentsOfFile: root + "/r/" + path, encoding: .utf8), let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)) {
                    kill(pid, SIGTERM)
                }
            }
        }
        try? FileManager.default.removeItem(atPath: root)
    }

    /// Installs `<sm>/SLOWSR`: smdriver's EXT driver, 3 s late for scans and attaches.
    func installSlowPlugin() throws -> String {
        let smdriver = try Executables.require("smdriver")
        let path = configuration.smDirectory + "/SLOWSR"
        let script = """
        #!/bin/sh
        case "$1" in
        *"<methodName>sr_scan</methodName>"*|*"<methodName>vdi_attach</methodName>"*) sleep 3 ;;
        esac
        exec '\(smdriver)' --driver ext "$1"
        """
        // Written through a descriptor closed on exec: a process another test spawns meanwhile
        // must not inherit it open for writing, or running the script fails with ETXTBSY.
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o755)
        guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        let written = script.utf8CString.withUnsafeBytes { write(fd, $0.baseAddress, $0.count - 1) }
        close(fd)
        guard written == script.utf8.count else { throw POSIXError(.EIO) }
        chmod(path, 0o755)
        return "slow"
    }

    /// Creates an EXT SR on the directory; its reference.
    func createSR(_ c: XenAPIConnection, name: String = "Local") throws -> String {
        // This daemon's host (in a pool on PostgreSQL, host.get_all holds the others' too).
        let host = XMLRPCValue.string(service.hostRef)
        return try c.call("SR.create", [host, .struct([XMLRPCMember("path", .string(srDirectory))]), "0", .string(name), "",
                                        "ext", "user", false, .struct([])]).stringValue!
    }

    /// Creates a VDI of `size` bytes; its reference.
    func createVDI(_ c: XenAPIConnection, sr: String, name: String = "disk", size: Int64 = 64 << 20) throws -> String {
        try c.call("VDI.create", [.struct([
            XMLRPCMember("SR", .string(sr)), XMLRPCMember("virtual_size", .string(String(size))),
            XMLRPCMember("name_label", .string(name)), XMLRPCMember("type", "user"), XMLRPCMember("sharable", false),
            XMLRPCMember("read_only", false), XMLRPCMember("other_config", .struct([XMLRPCMember("purpose", "test")])),
        ])]).stringValue!
    }
}

/// The built executables the tests run: `$SMDRIVER`/`$XE`, else next to the test bundle.
enum Executables {
    static func require(_ name: String) throws -> String {
        if let explicit = ProcessInfo.processInfo.environment[name.uppercased()], !explicit.isEmpty { return explicit }
        var folders: [URL] = []
        if let argv0 = CommandLine.arguments.first {
            folders.append(URL(fileURLWithPath: argv0).standardizedFileURL.deletingLastPathComponent())
        }
        folders.append(Bundle.main.bundleURL)
        folders.append(Bundle.main.bundleURL.deletingLastPathComponent())
        for folder in folders where access(folder.appendingPathComponent(name).path, X_OK) == 0 {
            return folder.appendingPathComponent(name).path
        }
        throw TestToolstack.Failure(description: "\(name) not found next to the test bundle; build it or set \(name.uppercased())=")
    }

    /// Runs `path` with `args` and `env` added; status, stdout, stderr.
    static func run(_ path: String, _ args: [String], env: [String: String] = [:]) throws -> (Int32, String, String) {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: path)
        p.arguments = args
        var e = ProcessInfo.processInfo.environment
        e.merge(env) { $1 }
        p.environment = e
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let r = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: r, as: UTF8.self))
    }
}
