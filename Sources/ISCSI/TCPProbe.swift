import Foundation

/// Why a TCP connection to a portal cannot be made (resolution, refusal, timeout), for the text
/// of an `.unreachable` error when libiscsi's own says little.
enum TCPProbe {
    /// How the reason of a name that does not resolve begins.
    static let unresolved = "cannot resolve"

    /// nil when a connection to `portal` succeeds within `timeout` seconds, else the reason.
    static func failure(_ portal: ISCSIPortal, timeout: Double) -> String? {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(portal.host, String(portal.port), &hints, &list)
        guard rc == 0, let first = list else { return "\(unresolved) \(portal.host): \(String(cString: gai_strerror(rc)))" }
        defer { freeaddrinfo(list) }
        var reason = "no address"
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let a = entry {
            entry = a.pointee.ai_next
            let fd = socket(a.pointee.ai_family, a.pointee.ai_socktype | Int32(SOCK_NONBLOCK.rawValue), a.pointee.ai_protocol)
            guard fd >= 0 else { continue }
            defer { close(fd) }
            if connect(fd, a.pointee.ai_addr, a.pointee.ai_addrlen) == 0 { return nil }
            guard errno == EINPROGRESS else { reason = String(cString: strerror(errno)); continue }
            var pfd = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            guard poll(&pfd, 1, Int32(timeout * 1000)) == 1 else { reason = "connection timed out"; continue }
            var err: Int32 = 0
            var len = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len)
            if err == 0 { return nil }
            reason = String(cString: strerror(err))
        }
        return reason
    }
}
