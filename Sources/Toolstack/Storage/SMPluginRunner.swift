import Foundation
import XenAPIWire
#if canImport(Glibc)
import Glibc
#endif

@_silgen_name("pipe2")
private func system_pipe2(_ fds: UnsafeMutablePointer<Int32>, _ flags: Int32) -> Int32

/// Executes SMAPIv1 plugins as xapi does: `<sm dir>/<TYPE>SR '<methodCall>'`, nothing on stdin,
/// `PATH` and `ORIGINATOR=SM` in the environment (plus where the callbacks go and the run
/// directory), one methodResponse read from stdout; faults mapped to xapi's errors.
public struct SMPluginRunner: Sendable {
    /// Where the plugins are.
    public var smDirectory: String
    /// `SWIFTSM_RUN_DIR` for the plugins.
    public var runDirectory: String
    /// The socket the plugins' callbacks go to (`SWIFTSM_XAPI_URL`).
    public var socketPath: String
    /// Where the host plugins are (xapi's `/etc/xapi.d/plugins`).
    public var pluginDirectory: String = "/etc/xapi.d/plugins"

    /// The plugin for SR type `type` (`ext` → `EXTSR`).
    public func executable(type: String) -> String { smDirectory + "/" + type.uppercased() + "SR" }

    /// The SR types whose plugin is installed.
    public func installedTypes() -> [String] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: smDirectory)) ?? []
        return names.filter { $0.hasSuffix("SR") && $0.count > 2 && access(smDirectory + "/" + $0, X_OK) == 0 }
            .map { String($0.dropLast(2)).lowercased() }.sorted()
    }

    /// Runs `document` through the plugin of `type`; its value, or the failure xapi would report.
    /// `started` is told the plugin's pid (the leader of its own process group) while it runs.
    public func run(type: String, document: String, started: ((pid_t) -> Void)? = nil) throws(APIFailure) -> XMLRPCValue {
        let exe = executable(type: type)
        guard access(exe, X_OK) == 0 else { throw APIFailure("SR_UNKNOWN_DRIVER", type) }
        try? FileManager.default.createDirectory(atPath: runDirectory, withIntermediateDirectories: true)
        let env = environment(["ORIGINATOR": "SM", "SWIFTSM_XAPI_URL": socketPath, "SWIFTSM_GC_AUTOSTART": nil])
        let (status, out, err) = Self.spawn(exe, [document], env, started: started)
        let stdout = String(decoding: out, as: UTF8.self), stderr = String(decoding: err, as: UTF8.self)
        guard status == 0 else { throw APIFailure("SR_BACKEND_FAILURE", "exit status \(status)", stdout, stderr) }
        let response: XMLRPCMethodResponse
        do { response = try XMLRPCDecoder().decodeMethodResponse(Data(out)) } catch {
            throw APIFailure("SR_BACKEND_FAILURE", "\(error)", stdout, stderr)
        }
        switch response {
        case .success(let value): return value
        case .fault(let fault): throw Self.failure(fault, stderr: stderr)
        }
    }

    /// Runs `function` of host plugin `name` with `arguments`, as xapi's `host.call_plugin` does
    /// (argv[1] a methodCall: the function, then the session and a struct of strings); the
    /// plugin's value, or its failure as an API error.
    public func callHostPlugin(_ name: String, _ function: String, _ arguments: [String: String], session: String) throws(APIFailure) -> String {
        let exe = pluginDirectory + "/" + name
        guard access(exe, X_OK) == 0 else { throw APIFailure("XENAPI_MISSING_PLUGIN", name) }
        let call = XMLRPCMethodCall(methodName: function, params: [
            .string(session), .struct(arguments.keys.sorted().map { XMLRPCMember($0, .string(arguments[$0]!)) }),
        ])
        let (status, out, err) = Self.spawn(exe, [XMLRPCEncoder(style: .xapi).encode(call)], environment([:]))
        let stdout = String(decoding: out, as: UTF8.self), stderr = String(decoding: err, as: UTF8.self)
        guard status == 0, case .success(let envelope)? = try? XMLRPCDecoder().decodeMethodResponse(Data(out)) else {
            throw APIFailure("XENAPI_PLUGIN_FAILURE", function, "exit status \(status)", stdout + stderr)
        }
        if envelope[member: "Status"]?.stringValue == "Success" { return envelope[member: "Value"]?.stringValue ?? "" }
        let description = envelope[member: "ErrorDescription"]?.arrayValue?.compactMap(\.stringValue) ?? []
        throw APIFailure(list: description)
    }

    /// A plugin's environment: `PATH`, the run directory, `SWIFTSM_LOG_STDERR` when set here, and
    /// `extra` (a nil value passes that variable on from here when set).
    func environment(_ extra: [String: String?]) -> [String: String] {
        var env = ["PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "SWIFTSM_RUN_DIR": runDirectory]
        let here = ProcessInfo.processInfo.environment
        for (key, value) in extra.merging(["SWIFTSM_LOG_STDERR": nil], uniquingKeysWith: { a, _ in a }) {
            if let v = value ?? here[key] { env[key] = v }
        }
        return env
    }

    /// xapi's mapping of a plugin fault to an API error.
    public static func failure(_ fault: XMLRPCFault, stderr: String) -> APIFailure {
        switch fault.code {
        case 38: return APIFailure("SR_OPERATION_NOT_SUPPORTED", fault.string)
        case 39: return APIFailure("SR_NOT_EMPTY")
        case 24: return APIFailure("VDI_IN_USE", fault.string)
        case 16: return APIFailure("SR_DEVICE_IN_USE")
        case 144: return APIFailure("VDI_MISSING", fault.string)
        default: return APIFailure("SR_BACKEND_FAILURE_\(fault.code)", "", fault.string, stderr)
        }
    }

    /// Runs `path` with `args` and `env`; exit status (or 128+signal), stdout and stderr.
    static func spawn(_ path: String, _ args: [String], _ env: [String: String], started: ((pid_t) -> Void)? = nil) -> (Int32, [UInt8], [UInt8]) {
        var outPipe: [Int32] = [0, 0], errPipe: [Int32] = [0, 0]
        guard system_pipe2(&outPipe, O_CLOEXEC) == 0, system_pipe2(&errPipe, O_CLOEXEC) == 0 else { return (127, [], Array("pipe failed".utf8)) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)
        let cArgs: [UnsafeMutablePointer<CChar>?] = ([path] + args).map { strdup($0) } + [nil]
        let cEnv: [UnsafeMutablePointer<CChar>?] = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for p in cArgs + cEnv { free(p) } }
        // Its own process group, so that a cancel can stop the plugin and whatever it runs.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETPGROUP))
        posix_spawnattr_setpgroup(&attributes, 0)
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, path, &actions, &attributes, cArgs, cEnv)
        close(outPipe[1]); close(errPipe[1])
        guard rc == 0 else {
            close(outPipe[0]); close(errPipe[0])
            return (127, [], Array("posix_spawn \(path): \(String(cString: strerror(rc)))".utf8))
        }
        started?(pid)
        // Read both pipes without letting either fill: poll them together.
        var out: [UInt8] = [], err: [UInt8] = []
        var fds = [pollfd(fd: outPipe[0], events: Int16(POLLIN), revents: 0), pollfd(fd: errPipe[0], events: Int16(POLLIN), revents: 0)]
        var open = 2
        var buffer = [UInt8](repeating: 0, count: 65536)
        while open > 0 {
            if poll(&fds, 2, -1) < 0 { if errno == EINTR { continue } else { break } }
            for i in 0..<2 where fds[i].fd >= 0 && fds[i].revents != 0 {
                let n = read(fds[i].fd, &buffer, buffer.count)
                if n > 0 {
                    if i == 0 { out += buffer[0..<n] } else { err += buffer[0..<n] }
                } else if n == 0 || errno != EINTR {
                    close(fds[i].fd)
                    fds[i].fd = -1
                    open -= 1
                }
            }
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let exited = (status & 0x7f) == 0
        return (exited ? (status >> 8) & 0xff : 128 + (status & 0x7f), out, err)
    }
}
