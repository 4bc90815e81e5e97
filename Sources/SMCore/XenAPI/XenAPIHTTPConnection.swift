import Foundation

/// A minimal HTTP/1.1 client connection: writes one POST at a time and reads the response,
/// framed by `Content-Length`, chunked transfer coding, or the end of the connection.
final class XenAPIHTTPConnection {
    /// The socket this connection talks over.
    private let socket: XenAPISocket
    /// Received bytes not yet consumed.
    private var buffer: [UInt8] = []
    /// Index of the first unconsumed byte in `buffer`.
    private var cursor = 0
    /// The largest response body accepted.
    private let maxBodyBytes: Int
    /// How many requests have completed on this connection.
    private(set) var completedExchanges = 0
    /// Whether the last failed exchange saw the connection close before any response byte
    /// (a keep-alive connection the server had already dropped: safe to retry on a new one).
    private(set) var closedBeforeResponse = false
    /// Bytes of the current response received so far.
    private var responseBytes = 0
    /// Whether the connection may be reused.
    private(set) var isReusable = true

    /// The largest status line or header line accepted.
    private static let maxLineBytes = 16 << 10
    /// The largest header section accepted.
    private static let maxHeaderBytes = 64 << 10
    /// How much to read from the socket at a time.
    private static let readSize = 64 << 10

    /// Opens a connection to `endpoint`, giving up at `deadline`.
    init(endpoint: XenAPIEndpoint, timeout: TimeInterval, maxBodyBytes: Int,
         deadline: ContinuousClock.Instant) throws(XenAPIError) {
        socket = try XenAPISocket(connectingTo: endpoint, timeout: timeout, deadline: deadline)
        self.maxBodyBytes = maxBodyBytes
    }

    /// Closes the connection.
    func close() {
        isReusable = false
        socket.close()
    }

    /// Sends `request` (a complete HTTP request) and reads the response to it.
    func exchange(_ request: [UInt8], deadline: ContinuousClock.Instant) throws(XenAPIError) -> XenAPIHTTPResponse {
        closedBeforeResponse = false
        responseBytes = 0
        do throws(XenAPIError) {
            switch try socket.sendAll(request, deadline: deadline) {
            case .timedOut:
                throw XenAPIError.transport("timed out sending the request")
            case .closed(let why):
                closedBeforeResponse = true
                throw XenAPIError.transport("connection closed while sending the request: \(why)")
            case nil:
                break
            }
            var response = try readResponse(deadline: deadline)
            while (100..<200).contains(response.status) && response.status != 101 {
                response = try readResponse(deadline: deadline)
            }
            completedExchanges += 1
            if !response.keepAlive { close() }
            return response
        } catch {
            close()
            throw error
        }
    }

    // MARK: - Reading

    /// Reads a status line, the header fields and the body of one response.
    private func readResponse(deadline: ContinuousClock.Instant) throws(XenAPIError) -> XenAPIHTTPResponse {
        let statusLine = try readLine(deadline: deadline, what: "status line")
        let parts = statusLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]), (100...599).contains(status) else {
            throw .protocolError("malformed HTTP status line \"\(statusLine.prefix(80))\"")
        }
        let http10 = parts[0] == "HTTP/1.0"
        let reason = parts.count > 2 ? String(parts[2]) : ""
        var headers: [(name: String, value: String)] = []
        var headerBytes = 0
        while true {
            let line = try readLine(deadline: deadline, what: "header")
            if line.isEmpty { break }
            headerBytes += line.utf8.count
            guard headerBytes <= Self.maxHeaderBytes else { throw .protocolError("HTTP header section too large") }
            guard let colon = line.firstIndex(of: ":"), colon != line.startIndex else {
                throw .protocolError("malformed HTTP header line \"\(line.prefix(80))\"")
            }
            let name = String(line[..<colon]).trimmingCharacters(in: .whitespaces)
            let value = String(line[line.index(after: colon)...]).trimmingCharacters(in: .whitespaces)
            headers.append((name, value))
        }
        func header(_ name: String) -> String? { headers.first { $0.name.lowercased() == name }?.value }
        let connection = header("connection")?.lowercased() ?? ""
        var keepAlive = http10 ? connection.contains("keep-alive") : !connection.contains("close")
        let body: [UInt8]
        let bodyless = (100..<200).contains(status) || status == 204 || status == 304
        if bodyless {
            body = []
        } else if let coding = header("transfer-encoding")?.lowercased(), coding != "identity" {
            guard coding.split(separator: ",").last?.trimmingCharacters(in: .whitespaces) == "chunked" else {
                throw .protocolError("unsupported transfer coding \"\(coding)\"")
            }
            body = try readChunkedBody(deadline: deadline)
        } else if let lengthText = header("content-length") {
            guard let length = Int(lengthText), length >= 0 else {
                throw .protocolError("malformed Content-Length \"\(lengthText.prefix(40))\"")
            }
            guard length <= maxBodyBytes else {
                throw .protocolError("response body of \(length) bytes exceeds the limit of \(maxBodyBytes)")
            }
            body = try readBytes(length, deadline: deadline, what: "body")
        } else {
            body = try readUntilClose(deadline: deadline)
            keepAlive = false
        }
        return XenAPIHTTPResponse(status: status, reason: reason, headers: headers, body: body, keepAlive: keepAlive)
    }

    /// Reads a body in chunked transfer coding, discarding chunk extensions and trailers.
    private func readChunkedBody(deadline: ContinuousClock.Instant) throws(XenAPIError) -> [UInt8] {
        var body: [UInt8] = []
        while true {
            let line = try readLine(deadline: deadline, what: "chunk size")
            let sizeText = line.split(separator: ";", maxSplits: 1).first.map { $0.trimmingCharacters(in: .whitespaces) } ?? ""
            guard !sizeText.isEmpty, sizeText.count <= 15, let size = Int(sizeText, radix: 16), size >= 0 else {
                throw .protocolError("malformed chunk size \"\(line.prefix(40))\"")
            }
            if size == 0 { break }
            guard body.count + size <= maxBodyBytes else {
                throw .protocolError("chunked response body exceeds the limit of \(maxBodyBytes) bytes")
            }
            body += try readBytes(size, deadline: deadline, what: "chunk")
            guard try readLine(deadline: deadline, what: "chunk terminator").isEmpty else {
                throw .protocolError("chunk data longer than its declared size")
            }
        }
        while try !readLine(deadline: deadline, what: "trailer").isEmpty {}
        return body
    }

    /// Reads everything until the server closes the connection.
    private func readUntilClose(deadline: ContinuousClock.Instant) throws(XenAPIError) -> [UInt8] {
        while true {
            guard buffered <= maxBodyBytes else {
                throw .protocolError("response body exceeds the limit of \(maxBodyBytes) bytes")
            }
            if try !fill(deadline: deadline, endAllowed: true) { break }
        }
        let body = Array(buffer[cursor...])
        cursor = buffer.count
        return body
    }

    /// Reads one line ending in CRLF (or a bare LF), without its terminator.
    private func readLine(deadline: ContinuousClock.Instant, what: String) throws(XenAPIError) -> String {
        var searchFrom = cursor
        while true {
            if let newline = buffer[searchFrom...].firstIndex(of: 0x0A) {
                var end = newline
                if end > cursor && buffer[end - 1] == 0x0D { end -= 1 }
                let line = String(decoding: buffer[cursor..<end], as: UTF8.self)
                cursor = newline + 1
                compact()
                return line
            }
            guard buffered <= Self.maxLineBytes else { throw .protocolError("HTTP \(what) line too long") }
            searchFrom = buffer.count
            _ = try fill(deadline: deadline, endAllowed: false, what: what)
        }
    }

    /// Reads exactly `count` bytes.
    private func readBytes(_ count: Int, deadline: ContinuousClock.Instant, what: String) throws(XenAPIError) -> [UInt8] {
        while buffered < count {
            _ = try fill(deadline: deadline, endAllowed: false, what: what)
        }
        let bytes = Array(buffer[cursor..<(cursor + count)])
        cursor += count
        compact()
        return bytes
    }

    /// The number of received bytes not yet consumed.
    private var buffered: Int { buffer.count - cursor }

    /// Drops consumed bytes once they dominate the buffer.
    private func compact() {
        if cursor == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            cursor = 0
        } else if cursor > Self.readSize && cursor * 2 > buffer.count {
            buffer.removeFirst(cursor)
            cursor = 0
        }
    }

    /// Receives more bytes; returns false at the end of the stream when `endAllowed`, else throws.
    private func fill(deadline: ContinuousClock.Instant, endAllowed: Bool, what: String = "body") throws(XenAPIError) -> Bool {
        let before = buffer.count
        switch try socket.receive(into: &buffer, maximum: Self.readSize, deadline: deadline) {
        case nil:
            responseBytes += buffer.count - before
            return true
        case .timedOut:
            throw .transport("timed out waiting for the response (\(responseBytes) bytes received)")
        case .closed(let why):
            isReusable = false
            if endAllowed { return false }
            if responseBytes == 0 {
                closedBeforeResponse = true
                throw .transport("connection closed before the response: \(why)")
            }
            throw .transport("connection closed in the middle of the response (\(what), \(responseBytes) bytes received): \(why)")
        }
    }
}
