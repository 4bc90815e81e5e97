import Foundation
import XenAPIWire
#if canImport(Glibc)
import Glibc
#endif

/// A blocking XenAPI client over HTTP/1.1 (XML-RPC), on a unix socket or TCP: what `xe` and the
/// tests use. One connection, kept alive and reopened when the server closed it.
public final class XenAPIConnection: @unchecked Sendable {
    /// Where the server is.
    public enum Endpoint: Sendable, Hashable {
        /// A unix socket path.
        case unix(String)
        /// A TCP host and port, plain HTTP.
        case tcp(String, Int)
        /// A TCP host and port, HTTPS.
        case tls(String, Int)
    }

    /// Why a call did not get an answer.
    public enum TransportError: Error, CustomStringConvertible {
        /// The connection could not be made or broke.
        case connection(String)
        /// The answer was not a XenAPI response.
        case protocolError(String)

        /// What went wrong, for messages.
        public var description: String {
            switch self {
            case .connection(let s): return "connection failed: \(s)"
            case .protocolError(let s): return "protocol error: \(s)"
            }
        }
    }

    /// The endpoint.
    public let endpoint: Endpoint
    /// Which server certificates a `.tls` endpoint may present.
    public let trust: TLSTrust
    private var fd: Int32 = -1
    /// The session, once logged in.
    public var session: String?

    /// A client of `endpoint` (no connection is made yet), trusting `trust` over TLS.
    public init(endpoint: Endpoint, trust: TLSTrust = .systemRoots) {
        self.endpoint = endpoint
        self.trust = trust
    }

    deinit { if fd >= 0 { close(fd) } }

    /// Logs in; the session is kept for `call`.
    public func login(user: String, password: String) throws -> String {
        let ref = try callRaw("session.login_with_password", [.string(user), .string(password), "1.0", "swiftsm-xe"])
        session = ref.stringValue
        return session ?? ""
    }

    /// Calls `method` with the session first.
    public func call(_ method: String, _ params: [XMLRPCValue] = []) throws -> XMLRPCValue {
        try callRaw(method, [.string(session ?? "")] + params)
    }

    /// Calls `method` with exactly `params`: the `Value`, or the `APIFailure` thrown.
    public func callRaw(_ method: String, _ params: [XMLRPCValue]) throws -> XMLRPCValue {
        let body = Array(XMLRPCEncoder(style: .python).encode(XMLRPCMethodCall(methodName: method, params: params)).utf8)
        let answer: [UInt8]
        do { answer = try post(body) } catch {
            disconnect()
            answer = try post(body)   // the server may have closed an idle keep-alive connection
        }
        let response: XMLRPCMethodResponse
        do { response = try XMLRPCDecoder().decodeMethodResponse(Data(answer)) } catch {
            throw TransportError.protocolError("\(error)")
        }
        guard case .success(let value) = response, let status = value[member: "Status"]?.stringValue else {
            throw TransportError.protocolError("unexpected response")
        }
        if status == "Success" { return value[member: "Value"] ?? .string("") }
        throw APIFailure(list: (value[member: "ErrorDescription"]?.arrayValue ?? []).map { $0.stringValue ?? "" })
    }

    /// Closes the connection.
    public func disconnect() {
        if fd >= 0 { close(fd) }
        fd = -1
    }

    private func connect() throws {
        if case .tls = endpoint { return }
        fd = try Self.openSocket(endpoint)
    }

    /// A connected socket to a unix or plain TCP `endpoint`.
    static func openSocket(_ endpoint: Endpoint) throws -> Int32 {
        switch endpoint {
        case .unix(let path):
            let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
            var addr = sockaddr_un()
            addr.sun_family = sa_family_t(AF_UNIX)
            let bytes = Array(path.utf8)
            guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
                close(fd)
                throw TransportError.connection("socket path too long")
            }
            withUnsafeMutableBytes(of: &addr.sun_path) { raw in
                for (i, b) in bytes.enumerated() { raw[i] = b }
            }
            let rc = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
            }
            if rc != 0 {
                let e = String(cString: strerror(errno))
                close(fd)
                throw TransportError.connection("\(path): \(e)")
            }
            return fd
        case .tls(let host, let port):
            throw TransportError.connection("\(host):\(port) needs TLS")
        case .tcp(let host, let port):
            var hints = addrinfo()
            hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
            var result: UnsafeMutablePointer<addrinfo>?
            guard getaddrinfo(host, String(port), &hints, &result) == 0, let first = result else {
                throw TransportError.connection("cannot resolve \(host)")
            }
            defer { freeaddrinfo(result) }
            let fd = socket(first.pointee.ai_family, first.pointee.ai_socktype, first.pointee.ai_protocol)
            if Glibc.connect(fd, first.pointee.ai_addr, first.pointee.ai_addrlen) != 0 {
                let e = String(cString: strerror(errno))
                close(fd)
                throw TransportError.connection("\(host):\(port): \(e)")
            }
            return fd
        }
    }

    private func post(_ body: [UInt8]) throws -> [UInt8] {
        if case .tls(let host, let port) = endpoint {
            let head = "POST / HTTP/1.1\r\nHost: \(host)\r\nContent-Type: text/xml\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n"
            let answer: [UInt8]
            do { answer = try TLSExchange.exchange(host: host, port: port, request: Array(head.utf8) + body, trust: trust) } catch {
                throw TransportError.connection("\(host):\(port): \(error)")
            }
            guard let end = Self.find(answer, Array("\r\n\r\n".utf8)) else { throw TransportError.protocolError("no HTTP response") }
            let headText = String(decoding: answer[0..<end], as: UTF8.self)
            guard headText.hasPrefix("HTTP/1.1 200") else { throw TransportError.protocolError(String(headText.prefix { $0 != "\r" })) }
            return Array(answer[(end + 4)...])
        }
        if fd < 0 { try connect() }
        let host: String
        switch endpoint { case .unix: host = "localhost"; case .tcp(let h, _), .tls(let h, _): host = h }
        let head = "POST / HTTP/1.1\r\nHost: \(host)\r\nContent-Type: text/xml\r\nContent-Length: \(body.count)\r\nConnection: keep-alive\r\n\r\n"
        try sendAll(Array(head.utf8) + body)
        var buffer: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        var headerEnd: Int?
        var length = 0
        while true {
            if headerEnd == nil, let end = Self.find(buffer, Array("\r\n\r\n".utf8)) {
                headerEnd = end + 4
                let headText = String(decoding: buffer[0..<end], as: UTF8.self)
                for line in headText.split(separator: "\r\n") where line.lowercased().hasPrefix("content-length:") {
                    length = Int(line.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) ?? 0
                }
                guard headText.hasPrefix("HTTP/1.1 200") || headText.hasPrefix("HTTP/1.0 200") else {
                    throw TransportError.protocolError(String(headText.prefix { $0 != "\r" }))
                }
            }
            if let h = headerEnd, buffer.count >= h + length { return Array(buffer[h..<(h + length)]) }
            let n = recv(fd, &chunk, chunk.count, 0)
            if n <= 0 { throw TransportError.connection("connection closed") }
            buffer += chunk[0..<n]
        }
    }

    private func sendAll(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { throw TransportError.connection("send: \(String(cString: strerror(errno)))") }
            offset += n
        }
    }

    /// Where `needle` first occurs in `haystack`.
    static func find(_ haystack: [UInt8], _ needle: [UInt8]) -> Int? {
        guard haystack.count >= needle.count else { return nil }
        for i in 0...(haystack.count - needle.count) where haystack[i] == needle[0] {
            if Array(haystack[i..<(i + needle.count)]) == needle { return i }
        }
        return nil
    }
}
