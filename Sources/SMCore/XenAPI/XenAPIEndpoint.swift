import Foundation

/// Where xapi listens: its local Unix socket, or a TCP address given as `http://host:port`.
public enum XenAPIEndpoint: Sendable, Hashable, CustomStringConvertible {
    /// A Unix-domain stream socket at this path (xapi's is `/var/lib/xcp/xapi`).
    case unix(path: String)
    /// A TCP address; `path` is the HTTP request target (`/` for XenAPI).
    case tcp(host: String, port: UInt16, path: String)

    /// xapi's local socket, which a driver uses when nothing else is configured.
    public static let defaultSocketPath = "/var/lib/xcp/xapi"

    /// The environment variable a driver reads its endpoint from.
    public static let environmentVariable = "SWIFTSM_XAPI_URL"

    /// The endpoint named by `SWIFTSM_XAPI_URL` in `environment`, or xapi's local socket when unset or empty.
    public static func fromEnvironment(
        _ environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(XenAPIError) -> XenAPIEndpoint {
        guard let text = environment[environmentVariable], !text.isEmpty else { return .unix(path: defaultSocketPath) }
        return try XenAPIEndpoint(parsing: text)
    }

    /// Parses `http://host[:port][/path]` (port 80 by default, IPv6 hosts in brackets), `unix:<path>`,
    /// `unix://<path>`, or an absolute socket path.
    public init(parsing text: String) throws(XenAPIError) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed.hasPrefix("/") {
            self = .unix(path: trimmed)
            return
        }
        if trimmed.lowercased().hasPrefix("unix:") {
            var path = Substring(trimmed.dropFirst("unix:".count))
            if path.hasPrefix("//") { path = path.dropFirst(2) }
            guard path.hasPrefix("/") else { throw .transport("invalid XenAPI endpoint \"\(text)\": socket path must be absolute") }
            self = .unix(path: String(path))
            return
        }
        guard trimmed.lowercased().hasPrefix("http://") else {
            throw .transport("invalid XenAPI endpoint \"\(text)\": expected http://host:port or a socket path")
        }
        let rest = trimmed.dropFirst("http://".count)
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = rest[..<slash]
        let path = slash == rest.endIndex ? "/" : String(rest[slash...])
        guard !authority.contains("@") else {
            throw .transport("invalid XenAPI endpoint: credentials in the URL are not supported")
        }
        var host: Substring
        var portText: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else {
                throw .transport("invalid XenAPI endpoint \"\(text)\": unterminated IPv6 address")
            }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if after.hasPrefix(":") { portText = after.dropFirst() } else if !after.isEmpty {
                throw .transport("invalid XenAPI endpoint \"\(text)\"")
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            portText = authority[authority.index(after: colon)...]
        } else {
            host = authority
        }
        guard !host.isEmpty else { throw .transport("invalid XenAPI endpoint \"\(text)\": no host") }
        var port: UInt16 = 80
        if let portText {
            guard let number = UInt16(portText), number > 0 else {
                throw .transport("invalid XenAPI endpoint \"\(text)\": bad port \"\(portText)\"")
            }
            port = number
        }
        self = .tcp(host: String(host), port: port, path: path)
    }

    /// The endpoint as a URL-like string (`unix:/var/lib/xcp/xapi`, `http://host:port/`).
    public var description: String {
        switch self {
        case .unix(let path):
            return "unix:\(path)"
        case .tcp(let host, let port, let path):
            let shown = host.contains(":") ? "[\(host)]" : host
            return "http://\(shown):\(port)\(path)"
        }
    }

    /// The HTTP request target to POST to.
    var requestTarget: String {
        switch self {
        case .unix: return "/"
        case .tcp(_, _, let path): return path
        }
    }

    /// The value of the HTTP `Host` header.
    var hostHeader: String {
        switch self {
        case .unix: return "localhost"
        case .tcp(let host, let port, _):
            let shown = host.contains(":") ? "[\(host)]" : host
            return port == 80 ? shown : "\(shown):\(port)"
        }
    }
}
