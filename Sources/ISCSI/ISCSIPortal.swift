import Foundation

/// One network address of an iSCSI target: a host name or address and a TCP port.
public struct ISCSIPortal: Sendable, Hashable, CustomStringConvertible {
    /// The standard iSCSI port.
    public static let defaultPort = 3260

    /// Host name, IPv4 address or IPv6 address (without brackets).
    public var host: String
    /// TCP port.
    public var port: Int

    /// The portal at `host:port`.
    public init(host: String, port: Int = ISCSIPortal.defaultPort) {
        self.host = host
        self.port = port
    }

    /// Parses `host`, `host:port`, `[v6]` or `[v6]:port` (a bare IPv6 address without a port
    /// is taken whole); `defaultPort` when none is given. Throws `ISCSIError.badPort` for a
    /// port that is not a number in 1...65535 and `.badTarget` for an empty host.
    public init(parsing text: String, defaultPort: Int = ISCSIPortal.defaultPort) throws {
        let t = text.trimmingCharacters(in: .whitespaces)
        var host = t
        var portText: String?
        if t.hasPrefix("[") {
            guard let close = t.firstIndex(of: "]") else { throw ISCSIError.badTarget(t) }
            host = String(t[t.index(after: t.startIndex)..<close])
            let rest = t[t.index(after: close)...]
            if rest.hasPrefix(":") { portText = String(rest.dropFirst()) } else if !rest.isEmpty { throw ISCSIError.badTarget(t) }
        } else if t.filter({ $0 == ":" }).count == 1, let colon = t.firstIndex(of: ":") {
            host = String(t[..<colon])
            portText = String(t[t.index(after: colon)...])
        }
        guard !host.isEmpty, !host.contains(where: { $0 == "/" || $0 == " " || $0 == "@" || $0 == "%" }) else {
            throw ISCSIError.badTarget(t)
        }
        var port = defaultPort
        if let portText { port = try Self.port(portText) }
        self.init(host: host, port: port)
    }

    /// A port number from `text` (1...65535), else `ISCSIError.badPort`.
    public static func port(_ text: String) throws -> Int {
        guard let p = Int(text.trimmingCharacters(in: .whitespaces)), (1...65535).contains(p) else {
            throw ISCSIError.badPort(text)
        }
        return p
    }

    /// `host:port`, IPv6 in brackets: the form libiscsi takes.
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
