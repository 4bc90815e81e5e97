import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A connected stream socket (Unix or TCP) with deadline-bounded connect, send and receive:
/// the transport under the XenAPI client's HTTP/1.1 connection.
final class XenAPISocket {
    /// The file descriptor, or -1 once closed.
    private(set) var descriptor: Int32
    /// The buffer `recv` writes into before bytes are appended to the caller's buffer.
    private var scratch: [UInt8] = []

    /// Why a receive or send stopped short of its goal.
    enum Outcome {
        /// The peer closed the connection (or reset it) before the operation completed.
        case closed(String)
        /// The deadline passed.
        case timedOut
    }

    /// Connects to `endpoint` before `deadline`, with `SO_RCVTIMEO`/`SO_SNDTIMEO` set to `timeout`.
    init(connectingTo endpoint: XenAPIEndpoint, timeout: TimeInterval, deadline: ContinuousClock.Instant) throws(XenAPIError) {
        descriptor = -1
        switch endpoint {
        case .unix(let path):
            try connectUnix(path: path, timeout: timeout, deadline: deadline)
        case .tcp(let host, let port, _):
            try connectTCP(host: host, port: port, timeout: timeout, deadline: deadline)
        }
    }

    deinit { close() }

    /// Closes the socket (idempotent).
    func close() {
        if descriptor >= 0 {
            _ = closeDescriptor(descriptor)
            descriptor = -1
        }
    }

    /// Sends every byte of `bytes`, or reports why it could not.
    func sendAll(_ bytes: [UInt8], deadline: ContinuousClock.Instant) throws(XenAPIError) -> Outcome? {
        var offset = 0
        while offset < bytes.count {
            switch try wait(for: Int16(POLLOUT), deadline: deadline) {
            case .timedOut: return .timedOut
            case .closed(let why): return .closed(why)
            case nil: break
            }
            let sent = bytes.withUnsafeBytes { raw in
                send(descriptor, raw.baseAddress! + offset, raw.count - offset, Self.sendFlags)
            }
            if sent < 0 {
                let code = errno
                if code == EINTR || code == EAGAIN || code == EWOULDBLOCK { continue }
                if code == EPIPE || code == ECONNRESET || code == ECONNABORTED { return .closed(Self.message(code)) }
                throw .transport("send failed: \(Self.message(code))")
            }
            offset += sent
        }
        return nil
    }

    /// Receives at least one byte into `buffer` (appending), or reports end of stream or timeout.
    func receive(into buffer: inout [UInt8], maximum: Int, deadline: ContinuousClock.Instant) throws(XenAPIError) -> Outcome? {
        while true {
            switch try wait(for: Int16(POLLIN), deadline: deadline) {
            case .timedOut: return .timedOut
            case .closed(let why): return .closed(why)
            case nil: break
            }
            if scratch.count < maximum { scratch = [UInt8](repeating: 0, count: maximum) }
            let received = scratch.withUnsafeMutableBytes { raw in
                recv(descriptor, raw.baseAddress!, maximum, 0)
            }
            if received > 0 {
                buffer.append(contentsOf: scratch[0..<received])
                return nil
            }
            if received == 0 { return .closed("connection closed by peer") }
            let code = errno
            if code == EINTR || code == EAGAIN || code == EWOULDBLOCK { continue }
            if code == ECONNRESET || code == ECONNABORTED || code == EPIPE { return .closed(Self.message(code)) }
            throw .transport("receive failed: \(Self.message(code))")
        }
    }

    // MARK: - Connecting

    /// Connects a Unix-domain stream socket to `path`.
    private func connectUnix(path: String, timeout: TimeInterval, deadline: ContinuousClock.Instant) throws(XenAPIError) {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let pathBytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard !pathBytes.isEmpty, pathBytes.count < capacity else {
            throw .transport("socket path is empty or longer than \(capacity - 1) bytes: \(path)")
        }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: pathBytes)
            raw[pathBytes.count] = 0
        }
        let fd = socket(AF_UNIX, Self.streamType, 0)
        guard fd >= 0 else { throw .transport("socket(AF_UNIX) failed: \(Self.message(errno))") }
        descriptor = fd
        try configure(timeout: timeout)
        let length = socklen_t(MemoryLayout<sockaddr_un>.size)
        let result = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, length) }
        }
        if result != 0 {
            let code = errno
            close()
            throw .transport("cannot connect to \(path): \(Self.message(code))")
        }
    }

    /// Resolves `host` and connects to the first address that answers before `deadline`.
    private func connectTCP(host: String, port: UInt16, timeout: TimeInterval, deadline: ContinuousClock.Instant) throws(XenAPIError) {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Self.plainStreamType
        hints.ai_flags = AI_NUMERICSERV
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &list)
        guard status == 0, let first = list else {
            throw .transport("cannot resolve \(host): \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(list) }
        var lastError = "no address"
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let info = entry {
            entry = info.pointee.ai_next
            let fd = socket(info.pointee.ai_family, Self.streamType, info.pointee.ai_protocol)
            guard fd >= 0 else { lastError = Self.message(errno); continue }
            descriptor = fd
            do {
                try configure(timeout: timeout)
                var one: Int32 = 1
                _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
                if let failure = try connectNonBlocking(info.pointee.ai_addr, info.pointee.ai_addrlen, deadline: deadline) {
                    lastError = failure
                    close()
                    continue
                }
                return
            } catch {
                close()
                throw error
            }
        }
        throw .transport("cannot connect to \(host):\(port): \(lastError)")
    }

    /// Connects the socket without blocking past `deadline`; returns the failure text, or nil once connected.
    private func connectNonBlocking(_ address: UnsafeMutablePointer<sockaddr>, _ length: socklen_t,
                                    deadline: ContinuousClock.Instant) throws(XenAPIError) -> String? {
        let flags = fcntl(descriptor, F_GETFL)
        _ = fcntl(descriptor, F_SETFL, flags | O_NONBLOCK)
        defer { _ = fcntl(descriptor, F_SETFL, flags) }
        if connect(descriptor, address, length) == 0 { return nil }
        let code = errno
        guard code == EINPROGRESS || code == EINTR else { return Self.message(code) }
        switch try wait(for: Int16(POLLOUT), deadline: deadline) {
        case .timedOut: return "connect timed out"
        case .closed, nil: break
        }
        var pending: Int32 = 0
        var size = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(descriptor, SOL_SOCKET, SO_ERROR, &pending, &size) == 0 else { return Self.message(errno) }
        return pending == 0 ? nil : Self.message(pending)
    }

    /// Sets close-on-exec, the send and receive timeouts, and (on Darwin) no SIGPIPE.
    private func configure(timeout: TimeInterval) throws(XenAPIError) {
        _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC)
        let clamped = max(0.001, min(timeout, XenAPIClient.longestTimeout))
        var value = timeval(tv_sec: Int(clamped), tv_usec: Int((clamped - clamped.rounded(.down)) * 1_000_000))
        let size = socklen_t(MemoryLayout<timeval>.size)
        guard setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &value, size) == 0,
              setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &value, size) == 0 else {
            throw .transport("setsockopt failed: \(Self.message(errno))")
        }
        #if canImport(Darwin)
        var one: Int32 = 1
        _ = setsockopt(descriptor, SOL_SOCKET, SO_NOSIGPIPE, &one, socklen_t(MemoryLayout<Int32>.size))
        #endif
    }

    // MARK: - Waiting

    /// Waits until the socket is ready for `events`, the peer hangs up, or `deadline` passes.
    private func wait(for events: Int16, deadline: ContinuousClock.Instant) throws(XenAPIError) -> Outcome? {
        guard descriptor >= 0 else { return .closed("connection already closed") }
        while true {
            let remaining = ContinuousClock.now.duration(to: deadline)
            guard remaining > .zero else { return .timedOut }
            let (seconds, attoseconds) = remaining.components
            let milliseconds = min(Int64(Int32.max), seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000)
            var request = pollfd(fd: descriptor, events: events, revents: 0)
            let ready = poll(&request, 1, Int32(milliseconds))
            if ready < 0 {
                if errno == EINTR { continue }
                throw .transport("poll failed: \(Self.message(errno))")
            }
            if ready == 0 { continue }
            if request.revents & (events | Int16(POLLHUP) | Int16(POLLERR)) != 0 { return nil }
            if request.revents & Int16(POLLNVAL) != 0 { return .closed("invalid socket") }
        }
    }

    // MARK: - Platform constants

    #if canImport(Glibc)
    /// `SOCK_STREAM` with close-on-exec.
    private static let streamType = Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue)
    /// `SOCK_STREAM` alone (for `getaddrinfo` hints).
    private static let plainStreamType = Int32(SOCK_STREAM.rawValue)
    /// Flags for `send`: never raise SIGPIPE.
    private static let sendFlags = Int32(MSG_NOSIGNAL)
    #else
    /// `SOCK_STREAM`.
    private static let streamType = SOCK_STREAM
    /// `SOCK_STREAM` alone (for `getaddrinfo` hints).
    private static let plainStreamType = SOCK_STREAM
    /// Flags for `send` (SIGPIPE is disabled per socket on Darwin).
    private static let sendFlags: Int32 = 0
    #endif

    /// The text of an errno value.
    static func message(_ code: Int32) -> String {
        String(cString: strerror(code))
    }
}

/// `close(2)`, reachable from inside a type that has its own `close()`.
private func closeDescriptor(_ descriptor: Int32) -> Int32 {
    close(descriptor)
}
