import ArgumentParser
import Foundation
import Logging
import Toolstack
import ToolstackPostgres

/// toolstackd: the XenAPI server of a SwiftSM host, in the foreground.
@main
struct ToolstackDaemon: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "toolstackd",
        abstract: "Serves the XenAPI (XML-RPC on /, JSON-RPC on /jsonrpc) on a local socket and optionally TCP.")

    @Option(help: "State directory: database, configuration (toolstackd.conf), run directory.")
    var stateDir: String = "/var/lib/swiftsm"

    @Option(help: "The local unix socket (trusted for root; mode 0600).")
    var socket: String = "/var/lib/xcp/xapi"

    @Option(help: "Serve HTTPS on this TCP port too (passwords are always checked there).")
    var port: Int?

    @Flag(help: "Serve plain HTTP instead of HTTPS on the TCP port.")
    var plainHttp = false

    @Option(help: "Serve NBD over TLS on this TCP port (xapi's is 10809), for VDI.get_nbd_info.")
    var nbdPort: Int?

    @Option(help: "This host's address on its management network (where NBD clients connect).")
    var address: String = "127.0.0.1"

    @Option(help: "Where the SMAPIv1 plugins <TYPE>SR are.")
    var smDir: String = "/opt/xensource/sm"

    @Option(help: "Where the host plugins are (datapath-mirror, for live VDI migrations).")
    var pluginDir: String = "/etc/xapi.d/plugins"

    @Option(help: "Run directory for the plugins (default <state-dir>/run; keep it short).")
    var runDir: String?

    @Option(help: "The store: sqlite (state.db in the state directory, the default) or postgres://user[:password]@host[:port]/database.")
    var database: String = "sqlite"

    @Flag(help: "Read a password on stdin, print its hash for toolstackd.conf (root-password-hash = …) and exit.")
    var hashPassword = false

    func run() throws {
        if hashPassword {
            let password = readLine(strippingNewline: true) ?? ""
            print(PasswordHash.make(password))
            return
        }
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        let log = Logger(label: "toolstackd")
        try FileManager.default.createDirectory(atPath: stateDir, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        var config = ToolstackConfiguration(stateDirectory: stateDir, socketPath: socket, port: port, smDirectory: smDir,
                                            runDirectory: runDir)
        config.tls = !plainHttp
        config.pluginDirectory = pluginDir
        config.nbdPort = nbdPort
        config.address = address
        let store: any ObjectStore = database == "sqlite"
            ? try SQLiteObjectStore(path: config.databaseFile) : try PostgresObjectStore(url: database)
        let db = try ObjectDatabase(store: store)
        let service = try XenAPIService(db: db, configuration: config, log: log)
        let server = XenAPIServer(service: service)
        try server.start()
        service.registerPlugins()
        service.reattachStorage()
        service.recoverCopyJobs()
        let tcp = (server.boundPort.map { " and TCP port \($0)" } ?? "") + (service.nbdPort.map { ", NBD over TLS on port \($0)" } ?? "")
        log.info("toolstackd: \(store.description); listening on \(config.socketPath)\(tcp)")
        FileHandle.standardError.write(Data("toolstackd ready\n".utf8))
        try server.wait()
    }
}
