import Foundation
import NIOCore
import NIOHTTP1

/// An HTTP response written from a worker thread, piece by piece: each write waits until the
/// event loop handed it to the socket, so a slow client slows the writer instead of filling
/// memory. The connection closes after the response (as xapi's transfer handlers do).
final class HTTPStreamResponse: @unchecked Sendable {
    private let channel: Channel
    private let version: HTTPVersion
    private let lock = NSLock()
    private var headSent = false

    /// A response on `channel` to a request of HTTP `version`.
    init(channel: Channel, version: HTTPVersion) {
        self.channel = channel
        self.version = version
    }

    /// Whether the status line went out (after which only the connection's end can tell failure).
    var started: Bool { locked(lock) { headSent } }

    /// Sends the status line and headers; `length` becomes Content-Length.
    func start(_ status: HTTPResponseStatus, headers: [(String, String)], length: UInt64?) throws {
        var h = HTTPHeaders(headers)
        if let length { h.replaceOrAdd(name: "Content-Length", value: String(length)) }
        h.replaceOrAdd(name: "Connection", value: "close")
        locked(lock) { headSent = true }
        try channel.writeAndFlush(HTTPServerResponsePart.head(HTTPResponseHead(version: version, status: status, headers: h))).wait()
    }

    /// Tells a client waiting for it to send the body (`100 Continue`).
    func sendContinue() throws {
        try channel.writeAndFlush(HTTPServerResponsePart.head(HTTPResponseHead(version: version, status: .continue))).wait()
    }

    /// Sends `bytes` of the body; returns once the socket took them.
    func write(_ bytes: UnsafeRawBufferPointer) throws {
        var buffer = channel.allocator.buffer(capacity: bytes.count)
        buffer.writeBytes(bytes)
        try channel.writeAndFlush(HTTPServerResponsePart.body(.byteBuffer(buffer))).wait()
    }

    /// Ends the response and closes the connection.
    func finish() {
        let channel = self.channel
        channel.writeAndFlush(HTTPServerResponsePart.end(nil)).whenComplete { _ in channel.close(promise: nil) }
    }

    /// A whole short response: status and a text body; then, once `before` returned (it reads
    /// what the client still sends, so that closing does not reset the connection under the
    /// answer), the connection's end.
    func send(_ status: HTTPResponseStatus, text: String, headers: [(String, String)] = [], before: () -> Void = {}) {
        let bytes = Array((text.hasSuffix("\n") ? text : text + "\n").utf8)
        do {
            try start(status, headers: headers + [("Content-Type", "text/plain")], length: UInt64(bytes.count))
            try bytes.withUnsafeBytes { try write($0) }
            try channel.writeAndFlush(HTTPServerResponsePart.end(nil)).wait()
        } catch {}
        before()
        channel.close(promise: nil)
    }

    /// Cuts the connection (a failure after the status line: the client sees a short body).
    func abort() {
        channel.close(promise: nil)
    }
}
