/// One `xe` command line: the command, its `key=value` parameters (maps as `prefix:key=value`),
/// flags (`--minimal` is `minimal=true`), and how to reach the server (`-s -p -u -pw`).
public struct XeInvocation: Sendable {
    /// The command (`vdi-create`).
    public var command: String
    /// Plain parameters.
    public var params: [String: String] = [:]
    /// Map parameters by prefix (`device-config` → [`path`: …]).
    public var maps: [String: [String: String]] = [:]
    /// The server, when TCP is asked for.
    public var server: String?
    /// The TCP port (443 by xe's default).
    public var port: Int = 443
    /// Whether to speak plain HTTP over TCP (`--nossl`), not HTTPS.
    public var noSSL: Bool { params["nossl"] == "true" }
    /// The user name.
    public var username: String = "root"
    /// The password.
    public var password: String = ""
    /// The PEM file the server's certificate must verify against (`--cafile`): a CA or the host's own certificate.
    public var caFile: String?
    /// Which server certificates to accept over HTTPS: `--cafile`, else `--no-verify`, else the system's CAs.
    public var trust: TLSTrust {
        if let caFile { return .file(caFile) }
        return params["no-verify"] == "true" ? .anyCertificate : .systemRoots
    }

    /// Parses argv (without the program name); nil when there is no command.
    public init?(_ argv: [String]) {
        var args = argv[...]
        var command: String?
        var params: [String: String] = [:]
        var maps: [String: [String: String]] = [:]
        while let arg = args.popFirst() {
            switch arg {
            case "-s": server = args.popFirst()
            case "-p": port = Int(args.popFirst() ?? "") ?? port
            case "-u": username = args.popFirst() ?? username
            case "-pw": password = args.popFirst() ?? password
            case "--cafile", "-cafile": caFile = args.popFirst()
            default:
                if arg.hasPrefix("--") {
                    params[String(arg.dropFirst(2))] = "true"
                } else if let eq = arg.firstIndex(of: "=") {
                    let key = String(arg[..<eq]), value = String(arg[arg.index(after: eq)...])
                    if let colon = key.firstIndex(of: ":") {
                        maps[String(key[..<colon]), default: [:]][String(key[key.index(after: colon)...])] = value
                    } else if key.hasPrefix("driver-params-") {
                        maps["driver-params", default: [:]][String(key.dropFirst("driver-params-".count))] = value
                    } else {
                        params[key] = value
                    }
                } else if command == nil {
                    command = arg
                } else {
                    params[arg] = "true"
                }
            }
        }
        guard let command else { return nil }
        self.command = command
        if let s = params.removeValue(forKey: "server") { server = s }
        if let p = params.removeValue(forKey: "port").flatMap({ Int($0) }) { port = p }
        if let u = params.removeValue(forKey: "username") { username = u }
        if let pw = params.removeValue(forKey: "password") { password = pw }
        self.params = params
        self.maps = maps
    }

    /// Whether `--minimal` (or `minimal=true`) was given.
    public var minimal: Bool { params["minimal"] == "true" }

    /// A required parameter, or the error xe prints for a missing one.
    public func require(_ name: String) throws(XeError) -> String {
        guard let v = params[name] else { throw XeError("Required parameter not found: \(name)") }
        return v
    }
}

/// An `xe` failure: the text printed on stderr and the exit status.
public struct XeError: Error, Sendable {
    /// What is printed.
    public var message: String
    /// The exit status.
    public var status: Int32
    /// What the command printed on stdout before it failed (the objects it did handle).
    public var output: String = ""

    /// A failure printing `message`, exiting with `status`.
    public init(_ message: String, status: Int32 = 1) {
        self.message = message
        self.status = status
    }

    /// The text xe prints for a XenAPI failure (`XeErrorText`).
    public init(_ failure: APIFailure) {
        message = XeErrorText.message(failure)
        status = 1
    }
}
