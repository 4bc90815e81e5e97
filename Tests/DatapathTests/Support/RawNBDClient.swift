import Foundation
import SMCore
import Testing

/// A deliberately simple NBD client speaking raw bytes, for what real clients never send:
/// malformed handshakes, unknown options, requests past the end, oversized requests, vanishing.
final class RawNBDClient {
    let fd: Int32

    /// Connects to the unix socket at `path`.
    init(_ path: String) throws {
        fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &addr.sun_path) { p in p.copyBytes(from: bytes); p[bytes.count] = 0 }
        let r = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard r == 0 else { close(fd); throw POSIXError(.ECONNREFUSED) }
        var tv = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    }

    deinit { close(fd) }

    /// Sends raw bytes (errors ignored: the server may have closed).
    func send(_ bytes: [UInt8]) {
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { Foundation.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            off += n
        }
    }

    /// Reads exactly `count` bytes; nil when the server closed (or timed out) first.
    func read(_ count: Int) -> [UInt8]? {
        var out = [UInt8](repeating: 0, count: count)
        var got = 0
        while got < count {
            let n = out[got...].withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return nil }
            got += n
        }
        return out
    }

    /// Whether the server closed the connection (EOF within the receive timeout).
    func closedByServer() -> Bool {
        var b = [UInt8](repeating: 0, count: 1)
        let n = b.withUnsafeMutableBytes { recv(fd, $0.baseAddress, 1, 0) }
        return n == 0 || (n < 0 && errno == ECONNRESET)
    }

    /// Reads the 18-byte greeting and answers with `flags`.
    func greet(flags: UInt32 = 3) throws {
        let g = try #require(read(18))
        #expect(be64(g, 0) == NBD.nbdMagic && be64(g, 8) == NBD.ihaveopt)
        send(be(flags))
    }

    /// Sends an option request.
    func option(_ option: UInt32, _ data: [UInt8] = [], magic: UInt64 = NBD.ihaveopt) {
        send(be(magic) + be(option) + be(UInt32(data.count)) + data)
    }

    /// Reads one option reply: (option, type, data).
    func optionReply() -> (option: UInt32, type: UInt32, data: [UInt8])? {
        guard let h = read(20), be64(h, 0) == NBD.optionReplyMagic else { return nil }
        let len = Int(be32(h, 16))
        guard let d = read(len) else { return nil }
        return (be32(h, 8), be32(h, 12), d)
    }

    /// Structured replies, `base:allocation`, then GO on `export`; returns the export size.
    func negotiate(_ export: String, structured: Bool = true, metaContext: Bool = true) throws -> UInt64 {
        try greet()
        if structured {
            option(NBD.Option.structuredReply)
            #expect(optionReply()?.type == NBD.Reply.ack)
        }
        if structured && metaContext {
            let q = Array(NBD.baseAllocation.utf8)
            option(NBD.Option.setMetaContext, be(UInt32(export.utf8.count)) + Array(export.utf8) + be(UInt32(1)) + be(UInt32(q.count)) + q)
            #expect(optionReply()?.type == NBD.Reply.metaContext)
            #expect(optionReply()?.type == NBD.Reply.ack)
        }
        option(NBD.Option.go, be(UInt32(export.utf8.count)) + Array(export.utf8) + be(UInt16(0)))
        var size: UInt64 = 0
        while let r = optionReply() {
            if r.type == NBD.Reply.info, be16(r.data, 0) == NBD.InfoType.export { size = be64(r.data, 2) }
            if r.type == NBD.Reply.ack { return size }
            if r.type & 0x8000_0000 != 0 { throw POSIXError(.EPROTO) }
        }
        throw POSIXError(.EPROTO)
    }

    /// Sends a transmission request.
    func request(_ type: UInt16, flags: UInt16 = 0, cookie: UInt64, offset: UInt64, length: UInt32, payload: [UInt8] = [],
                 magic: UInt32 = NBD.requestMagic) {
        send(be(magic) + be(flags) + be(type) + be(cookie) + be(offset) + be(length) + payload)
    }

    /// Reads one reply (simple or structured chunk) and returns (cookie, error, payload). For
    /// structured replies the error comes from an ERROR chunk; `readLength` delimits simple READ data.
    func reply(readLength: Int = 0) -> (cookie: UInt64, error: UInt32, payload: [UInt8], done: Bool)? {
        guard let m = read(4) else { return nil }
        switch be32(m, 0) {
        case NBD.simpleReplyMagic:
            guard let h = read(12) else { return nil }
            let error = be32(h, 0)
            let data = error == 0 && readLength > 0 ? (read(readLength) ?? []) : []
            return (be64(h, 4), error, data, true)
        case NBD.structuredReplyMagic:
            guard let h = read(16) else { return nil }
            let flags = be16(h, 0), type = be16(h, 2), cookie = be64(h, 4), len = Int(be32(h, 12))
            guard let p = read(len) else { return nil }
            let error = type & 0x8000 != 0 ? be32(p, 0) : 0
            return (cookie, error, p, flags & 1 != 0)
        default:
            return nil
        }
    }
}

func be(_ v: UInt16) -> [UInt8] { withUnsafeBytes(of: v.bigEndian) { Array($0) } }
func be(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.bigEndian) { Array($0) } }
func be(_ v: UInt64) -> [UInt8] { withUnsafeBytes(of: v.bigEndian) { Array($0) } }
func be16(_ b: [UInt8], _ i: Int) -> UInt16 { b[i..<i + 2].reduce(0) { $0 << 8 | UInt16($1) } }
func be32(_ b: [UInt8], _ i: Int) -> UInt32 { b[i..<i + 4].reduce(0) { $0 << 8 | UInt32($1) } }
func be64(_ b: [UInt8], _ i: Int) -> UInt64 { b[i..<i + 8].reduce(0) { $0 << 8 | UInt64($1) } }
