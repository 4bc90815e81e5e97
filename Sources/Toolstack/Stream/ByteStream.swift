import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A blocking, two-way byte stream to a server (a unix or TCP socket, or TLS over TCP).
protocol ByteStream: AnyObject {
    /// Sends all of `bytes`.
    func send(_ bytes: UnsafeRawBufferPointer) throws
    /// Receives up to `buffer.count` bytes: how many, 0 when the server closed the stream.
    func receive(into buffer: UnsafeMutableRawBufferPointer) throws -> Int
    /// Closes the stream.
    func close()
}

/// A `ByteStream` over a connected socket.
final class SocketByteStream: ByteStream {
    private var fd: Int32

    /// A stream over `fd`, which it closes.
    init(fd: Int32) { self.fd = fd }

    deinit { close() }

    func send(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let n = Glibc.send(fd, bytes.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw TransferError.connection("send: \(String(cString: strerror(errno)))") }
            offset += n
        }
    }

    func receive(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        while true {
            let n = recv(fd, buffer.baseAddress, buffer.count, 0)
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw TransferError.connection("receive: \(String(cString: strerror(errno)))") }
            return n
        }
    }

    func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }
}
