import Foundation
import VHD
#if canImport(Glibc)
import Glibc
#endif

/// The client side of xapi's HTTP transfers (what `xe vdi-export` and `xe vdi-import` use):
/// a streaming GET of `/export_raw_vdi` into a file, and a streaming PUT of a file to
/// `/import_raw_vdi`, on the endpoint of a logged-in connection.
public struct XenAPITransfer {
    /// The server.
    public let endpoint: XenAPIConnection.Endpoint
    /// Which certificates a TLS server may present.
    public let trust: TLSTrust
    /// The session the transfer runs in.
    public let session: String

    /// A transfer client of `connection`'s server and session.
    public init(_ connection: XenAPIConnection) {
        endpoint = connection.endpoint
        trust = connection.trust
        session = connection.session ?? ""
    }

    /// Why a transfer failed on the server: the HTTP status and the error it answered.
    public struct Refused: Error, CustomStringConvertible {
        /// The HTTP status code.
        public var status: Int
        /// The answer's body: the API error's code and parameters, a line each.
        public var text: String
        /// The API failure the answer names.
        public var failure: APIFailure { APIFailure(list: text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)) }
        /// The status and the answer.
        public var description: String { "HTTP \(status): \(text)" }
    }

    /// Downloads `/export_raw_vdi` with `arguments` (besides the session) into `file`, leaving
    /// zeros as holes; `progress` gets the bytes received and the total. Returns the bytes received.
    @discardableResult
    public func download(_ arguments: [String: String], into file: Int32, progress: (UInt64, UInt64) -> Void) throws -> UInt64 {
        let stream = try open()
        defer { stream.close() }
        try sendHead(stream, "GET", "/export_raw_vdi", arguments, length: nil)
        var (status, length, rest) = try receiveHead(stream)
        guard status == 200 else { throw Refused(status: status, text: try receiveText(stream, rest, length)) }
        guard let total = length else { throw TransferError.connection("the export has no Content-Length") }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)
        defer { buffer.deallocate() }
        var received: UInt64 = 0
        while received < total {
            var n = 0
            if !rest.isEmpty {
                n = min(rest.count, buffer.count)
                rest.withUnsafeBytes { buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
                rest.removeFirst(n)
            } else {
                n = try stream.receive(into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<Int(min(UInt64(buffer.count), total - received))]))
                guard n > 0 else { throw TransferError.connection("the server closed the export after \(received) of \(total) bytes") }
            }
            let piece = UnsafeRawBufferPointer(rebasing: buffer[0..<n])
            if Convert.isZero(piece) {
                guard lseek(file, off_t(n), SEEK_CUR) >= 0 else { throw Self.fileError("seek") }
            } else {
                var done = 0
                while done < n {
                    let w = Glibc.write(file, piece.baseAddress! + done, n - done)
                    guard w > 0 else { throw Self.fileError("write") }
                    done += w
                }
            }
            received += UInt64(n)
            progress(received, total)
        }
        guard ftruncate(file, off_t(total)) == 0 else { throw Self.fileError("truncate") }
        return received
    }

    /// Uploads `length` bytes of `file` to `/import_raw_vdi` with `arguments`; `progress` gets
    /// the bytes sent and the total.
    public func upload(_ arguments: [String: String], from file: Int32, length: UInt64, progress: (UInt64, UInt64) -> Void) throws {
        let stream = try open()
        defer { stream.close() }
        try sendHead(stream, "PUT", "/import_raw_vdi", arguments, length: length)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)
        defer { buffer.deallocate() }
        var sent: UInt64 = 0
        var sendFailure: (any Error)?
        while sent < length {
            let n = Glibc.read(file, buffer.baseAddress, Int(min(UInt64(buffer.count), length - sent)))
            guard n > 0 else { throw n == 0 ? TransferError.file("the file ended after \(sent) bytes") : Self.fileError("read") }
            // The server may refuse the upload midway and close: its answer says why.
            do { try stream.send(UnsafeRawBufferPointer(rebasing: buffer[0..<n])) } catch {
                sendFailure = error
                break
            }
            sent += UInt64(n)
            progress(sent, length)
        }
        let status: Int, answerLength: UInt64?, rest: [UInt8]
        do { (status, answerLength, rest) = try receiveHead(stream) } catch { throw sendFailure ?? error }
        guard status == 200 else { throw Refused(status: status, text: try receiveText(stream, rest, answerLength)) }
        if let sendFailure { throw sendFailure }
    }

    private func open() throws -> ByteStream {
        if case .tls(let host, let port) = endpoint { return try TLSByteStream(host: host, port: port, trust: trust) }
        return SocketByteStream(fd: try XenAPIConnection.openSocket(endpoint))
    }

    private func sendHead(_ stream: ByteStream, _ method: String, _ path: String, _ arguments: [String: String], length: UInt64?) throws {
        var query = URLComponents()
        query.queryItems = ([URLQueryItem(name: "session_id", value: session)]
            + arguments.keys.sorted().map { URLQueryItem(name: $0, value: arguments[$0]) })
        let host: String
        switch endpoint { case .unix: host = "localhost"; case .tcp(let h, _), .tls(let h, _): host = h }
        var head = "\(method) \(path)?\(query.percentEncodedQuery ?? "") HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\n"
        if let length { head += "Content-Type: application/octet-stream\r\nContent-Length: \(length)\r\n" }
        head += "\r\n"
        try Array(head.utf8).withUnsafeBytes { try stream.send($0) }
    }

    /// Reads the response head: the status, Content-Length, and the body bytes that came with it.
    private func receiveHead(_ stream: ByteStream) throws -> (Int, UInt64?, [UInt8]) {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            if let end = XenAPIConnection.find(bytes, Array("\r\n\r\n".utf8)) {
                let lines = String(decoding: bytes[0..<end], as: UTF8.self).components(separatedBy: "\r\n")
                let parts = lines[0].split(separator: " ")
                guard parts.count >= 2, parts[0].hasPrefix("HTTP/"), let status = Int(parts[1]) else {
                    throw TransferError.connection("not an HTTP response: \(lines[0])")
                }
                var length: UInt64?
                for line in lines.dropFirst() where line.lowercased().hasPrefix("content-length:") {
                    length = UInt64(line.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces))
                }
                let rest = Array(bytes[(end + 4)...])
                if status == 100 {   // an interim answer: the real one follows
                    bytes = rest
                    continue
                }
                return (status, length, rest)
            }
            guard bytes.count < 65536 else { throw TransferError.connection("response head too long") }
            let n = try chunk.withUnsafeMutableBytes { try stream.receive(into: $0) }
            guard n > 0 else { throw TransferError.connection("the server closed the connection without an answer") }
            bytes += chunk[0..<n]
        }
    }

    /// The rest of a short text answer.
    private func receiveText(_ stream: ByteStream, _ first: [UInt8], _ length: UInt64?) throws -> String {
        var bytes = first
        var chunk = [UInt8](repeating: 0, count: 16384)
        while bytes.count < Int(min(length ?? 65536, 65536)) {
            let n = try chunk.withUnsafeMutableBytes { try stream.receive(into: $0) }
            if n == 0 { break }
            bytes += chunk[0..<n]
        }
        return String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private static func fileError(_ what: String) -> TransferError {
        TransferError.file("\(what) of the file: \(String(cString: strerror(errno)))")
    }
}
