import Foundation

/// A synchronous XenAPI client for the callbacks a storage driver makes into xapi: XML-RPC over
/// HTTP/1.1 on xapi's Unix socket or a TCP address, one connection kept open between calls.
///
/// Calls are serialised: the client may be shared between threads, but only one call is on the
/// wire at a time. The session reference is sent as the first parameter of every typed helper
/// and is never written to a log or an error message by the client.
public final class XenAPIClient: @unchecked Sendable {
    /// Where xapi listens.
    public let endpoint: XenAPIEndpoint
    /// The longest one call may take, from connecting to the last byte of the reply, in seconds.
    public let timeout: TimeInterval
    /// The `originator` HTTP header sent with every request (nil for none).
    public let originator: String?
    /// The task this work is a subtask of, sent as the `Subtask-of` HTTP header (nil for none).
    public let subtaskOf: String?
    /// The largest reply body accepted, in bytes.
    public let maxResponseBytes: Int

    /// Serialises calls and guards the mutable state below.
    private let lock = NSLock()
    /// The open connection, if any.
    private var connection: XenAPIHTTPConnection?
    /// The session reference the typed helpers send (`OpaqueRef:NULL` until set or logged in).
    private var session: String

    /// The longest timeout honoured (a year); longer ones are clamped to it.
    static let longestTimeout: TimeInterval = 31_536_000

    /// The null reference (`OpaqueRef:NULL`).
    public static let nullRef = "OpaqueRef:NULL"

    /// A client of xapi at `endpoint`, using `sessionRef` (from the SMAPIv1 request) for typed calls.
    public init(endpoint: XenAPIEndpoint = .unix(path: XenAPIEndpoint.defaultSocketPath),
                sessionRef: String = XenAPIClient.nullRef,
                timeout: TimeInterval = 30,
                originator: String? = "SM",
                subtaskOf: String? = nil,
                maxResponseBytes: Int = 64 << 20) {
        self.endpoint = endpoint
        self.session = sessionRef
        self.timeout = timeout
        self.originator = originator
        self.subtaskOf = subtaskOf
        self.maxResponseBytes = maxResponseBytes
    }

    /// A client of the endpoint named by `SWIFTSM_XAPI_URL` (xapi's local socket when unset).
    public convenience init(environment: [String: String] = ProcessInfo.processInfo.environment,
                            sessionRef: String, subtaskOf: String? = nil,
                            timeout: TimeInterval = 30) throws(XenAPIError) {
        let originator = environment["ORIGINATOR"].flatMap { $0.isEmpty ? nil : $0 } ?? "SM"
        self.init(endpoint: try XenAPIEndpoint.fromEnvironment(environment), sessionRef: sessionRef,
                  timeout: timeout, originator: originator, subtaskOf: subtaskOf)
    }

    deinit {
        connection?.close()
    }

    /// The session reference sent by the typed helpers.
    public var sessionRef: String {
        get { lock.withLock { session } }
        set { lock.withLock { session = newValue } }
    }

    /// Closes the connection to xapi (the next call opens a new one).
    public func close() {
        lock.withLock {
            connection?.close()
            connection = nil
        }
    }

    /// Calls `method` with exactly `params` and returns the `Value` of a `Success` reply.
    ///
    /// Throws `.failure(ErrorDescription)` when xapi answers `Failure`, `.transport` when the
    /// connection fails or the call exceeds `timeout`, `.protocolError` for a malformed reply.
    public func call(_ method: String, _ params: [XMLRPCValue]) throws(XenAPIError) -> XMLRPCValue {
        let body = XMLRPCEncoder(style: .python).encode(XMLRPCMethodCall(methodName: method, params: params))
        lock.lock()
        let reply: [UInt8]
        do throws(XenAPIError) {
            reply = try post(Array(body.utf8))
            lock.unlock()
        } catch {
            lock.unlock()
            throw error
        }
        return try Self.unwrap(reply, method: method)
    }

    /// Calls `method` with the session reference followed by `params` (the XenAPI convention).
    public func callWithSession(_ method: String, _ params: [XMLRPCValue]) throws(XenAPIError) -> XMLRPCValue {
        try call(method, [.string(sessionRef)] + params)
    }

    // MARK: - HTTP

    /// Sends one XML-RPC body and returns the reply body; retries once on a new connection when
    /// a kept-alive connection turns out to have been closed by xapi before it answered.
    private func post(_ body: [UInt8]) throws(XenAPIError) -> [UInt8] {
        let deadline = ContinuousClock.now + .seconds(max(0, min(timeout, Self.longestTimeout)))
        let request = requestBytes(body)
        var attempt = 0
        while true {
            attempt += 1
            let current: XenAPIHTTPConnection
            let reused: Bool
            if let open = connection, open.isReusable {
                current = open
                reused = true
            } else {
                connection = nil
                current = try XenAPIHTTPConnection(endpoint: endpoint, timeout: timeout,
                                                   maxBodyBytes: maxResponseBytes, deadline: deadline)
                connection = current
                reused = false
            }
            let response: XenAPIHTTPResponse
            do throws(XenAPIError) {
                response = try current.exchange(request, deadline: deadline)
            } catch {
                connection = nil
                if reused && current.closedBeforeResponse && attempt == 1 { continue }
                throw error
            }
            if !current.isReusable { connection = nil }
            guard response.status == 200 else {
                throw .protocolError("HTTP \(response.status) \(response.reason) from \(endpoint)")
            }
            return response.body
        }
    }

    /// The bytes of an HTTP/1.1 POST of `body` to the endpoint.
    private func requestBytes(_ body: [UInt8]) -> [UInt8] {
        var head = "POST \(endpoint.requestTarget) HTTP/1.1\r\n"
        head += "Host: \(endpoint.hostHeader)\r\n"
        head += "User-Agent: SwiftSM\r\n"
        head += "Content-Type: text/xml\r\n"
        head += "Content-Length: \(body.count)\r\n"
        head += "Connection: keep-alive\r\n"
        if let originator { head += "originator: \(Self.headerValue(originator))\r\n" }
        if let subtaskOf { head += "Subtask-of: \(Self.headerValue(subtaskOf))\r\n" }
        head += "\r\n"
        return Array(head.utf8) + body
    }

    /// `text` without CR or LF, so a header value cannot inject another header.
    private static func headerValue(_ text: String) -> String {
        String(text.unicodeScalars.filter { $0 != "\r" && $0 != "\n" }.map(Character.init))
    }

    // MARK: - XenAPI envelope

    /// Decodes a reply body and unwraps `{Status, Value | ErrorDescription}`.
    static func unwrap(_ body: [UInt8], method: String) throws(XenAPIError) -> XMLRPCValue {
        let decoder = XMLRPCDecoder(limits: XMLRPCLimits(maxDocumentBytes: max(body.count, 4 << 20), maxDepth: 64))
        let response: XMLRPCMethodResponse
        do throws(XMLRPCError) {
            response = try decoder.decodeMethodResponse(Data(body))
        } catch {
            throw .protocolError("undecodable reply to \(method): \(error)")
        }
        let result: XMLRPCValue
        switch response {
        case .success(let value):
            result = value
        case .fault(let fault):
            throw .protocolError("XML-RPC fault \(fault.code) in reply to \(method): \(fault.string)")
        }
        guard result.structMembers != nil, let status = result[member: "Status"]?.stringValue else {
            throw .protocolError("reply to \(method) is not a XenAPI result struct")
        }
        switch status {
        case "Success":
            return result[member: "Value"] ?? .nil
        case "Failure":
            guard let description = result[member: "ErrorDescription"]?.arrayValue else {
                throw .protocolError("Failure reply to \(method) has no ErrorDescription array")
            }
            throw .failure(description.map(Self.text))
        default:
            throw .protocolError("reply to \(method) has unknown Status \"\(status)\"")
        }
    }

    /// A value of an `ErrorDescription` as text (xapi sends strings; anything else is shown).
    private static func text(_ value: XMLRPCValue) -> String {
        switch value {
        case .string(let text): return text
        case .int(let number): return String(number)
        case .boolean(let flag): return flag ? "true" : "false"
        case .double(let number): return String(number)
        case .dateTime(let text): return text
        default: return XMLRPCEncoder(style: .xapi).encode(value)
        }
    }
}
