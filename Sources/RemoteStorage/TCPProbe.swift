import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Whether something accepts TCP connections on a server's port within a time limit, and why
/// not: the Python SM's reachability check before it mounts an export or logs in to a target,
/// and the text of an unreachable-server error when the library's own says little.
public enum TCPProbe {
    /// How the reason of a name that does not resolve begins.
    public static let unresolved = "cannot resolve"

    /// nil when `host:port` accepted a connection within `timeout` seconds, else why not.
    public static func failure(host: String, port: Int, timeout: Double) -> String? {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_family = AF_UNSPEC
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &list)
        guard rc == 0, let first = list else { return "\(unresolved) \(host): \(String(cString: gai_strerror(rc)))" }
        defer { freeaddrinfo(first) }
        var reason = "no address"
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let a = entry {
            entry = a.pointee.ai_next
            let fd = socket(a.pointee.ai_family, a.pointee.ai_socktype | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue),
                            a.pointee.ai_protocol)
            guard fd >= 0 else { reason = String(cString: strerror(errno)); continue }
            defer { close(fd) }
            if connect(fd, a.pointee.ai_addr, a.pointee.ai_addrlen) == 0 { return nil }
            guard errno == EINPROGRESS else { reason = String(cString: strerror(errno)); continue }
            var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            guard poll(&p, 1, Int32(timeout * 1000)) == 1 else { reason = "no answer within \(Int(timeout)) s"; continue }
            var err: Int32 = 0
            var len = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len)
            if err == 0 { return nil }
            reason = String(cString: strerror(err))
        }
        return reason
    }
}
