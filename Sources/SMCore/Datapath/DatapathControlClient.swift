import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A blocking client of a datapath's control socket (used by `smdriver` and tests): sends one
/// command line, returns the text after `ok `, throws `DatapathError.control` on `error …`.
public struct DatapathControlClient: Sendable {
    /// The control socket.
    public let socketPath: String
    /// Seconds to wait for a reply (a pause waits for the running request and a flush).
    public var timeout: Double

    /// A client of `socketPath`.
    public init(socketPath: String, timeout: Double = 120) {
        self.socketPath = socketPath
        self.timeout = timeout
    }

    /// Sends `command` and returns the reply's text after `ok `.
    public func send(_ command: String) throws -> String {
        let fd = try Self.connect(socketPath)
        defer { Glibc.close(fd) }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - timeout.rounded(.down)) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        let bytes = Array((command + "\n").utf8)
        var sent = 0
        while sent < bytes.count {
            let n = bytes[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n < 0 { if errno == EINTR { continue }; throw DatapathError.control("send: \(String(cString: strerror(errno)))") }
            sent += n
        }
        var reply: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while !reply.contains(UInt8(ascii: "\n")) {
            let n = chunk.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 {
                if errno == EINTR { continue }
                throw DatapathError.control("no reply to '\(command)': \(String(cString: strerror(errno)))")
            }
            if n == 0 { throw DatapathError.control("connection closed before the reply to '\(command)'") }
            reply += chunk[0..<n]
            if reply.count > 1 << 20 { throw DatapathError.control("reply too long") }
        }
        let text = String(decoding: reply.prefix { $0 != UInt8(ascii: "\n") }, as: UTF8.self)
        if text == "ok" { return "" }
        if text.hasPrefix("ok ") { return String(text.dropFirst(3)) }
        throw DatapathError.control(text.hasPrefix("error ") ? String(text.dropFirst(6)) : text)
    }

    /// Whether the datapath answers `ping`.
    public func ping() -> Bool {
        var quick = self
        quick.timeout = 5
        return (try? quick.send("ping")) == "pong"
    }

    /// The counters.
    public func stats() throws -> DatapathStats {
        try JSONDecoder().decode(DatapathStats.self, from: Data(try send("stats").utf8))
    }

    /// A connected unix stream socket.
    static func connect(_ path: String) throws -> Int32 {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count <= DatapathDirectory.maxSocketPath else { throw DatapathError.socketPathTooLong(path) }
        withUnsafeMutableBytes(of: &addr.sun_path) { p in
            p.copyBytes(from: bytes)
            p[bytes.count] = 0
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw DatapathError.control("socket: \(String(cString: strerror(errno)))") }
        let r = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard r == 0 else {
            let e = errno
            Glibc.close(fd)
            throw DatapathError.control("connect \(path): \(String(cString: strerror(e)))")
        }
        return fd
    }
}
