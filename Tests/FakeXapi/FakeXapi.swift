import Foundation
#if canImport(Glibc)
import Glibc
#endif
import SMCore

/// A failure a test's plugin runner reports, as xapi's error description.
public struct FakeXapiPluginError: Error, Sendable {
    /// The error description (code first).
    public var description: [String]
    /// A failure with `description`.
    public init(_ description: [String]) { self.description = description }
}

/// An in-process XenAPI endpoint for tests, answering as xapi would: XML-RPC over HTTP/1.1 on a
/// Unix socket in a temporary directory (and optionally TCP on 127.0.0.1), with an in-memory
/// database of SR and VDI records that tests inspect afterwards (`vdis`, `srs`, `calls`, …).
///
/// One thread accepts connections; each connection is served by its own thread, keep-alive.
/// All state is behind one lock. Call `stop()` when done (it joins every thread).
public final class FakeXapi: @unchecked Sendable {
    /// How the fake frames (or fails to deliver) its responses.
    public enum ResponseMode: Sendable, Equatable {
        /// `content-length`, keep-alive: what xapi does.
        case contentLength
        /// `Transfer-Encoding: chunked`, in chunks of this many bytes.
        case chunked(chunkSize: Int)
        /// No length: the body ends when the fake closes the connection.
        case untilClose
        /// Announces the full length, sends this many bytes of the response, then closes.
        case truncated(afterBytes: Int)
        /// Reads the request and never answers (until the client gives up or the fake stops).
        case silent
        /// Answers with this HTTP status and an empty body.
        case httpStatus(Int)
    }

    /// The session reference the test hands to the client.
    public let sessionRef: String
    /// The Unix socket path.
    public let socketPath: String
    /// The TCP port on 127.0.0.1, when TCP was asked for.
    public private(set) var tcpPort: UInt16?

    private let directory: String
    private let lock = NSLock()
    private var store = FakeXapiStore()
    private var mode: ResponseMode = .contentLength
    private var dropAfterResponse = false
    private var accepted = 0
    private var listeners: [Int32] = []
    private var connections: Set<Int32> = []
    private var stopping = false
    private var wakePipe: [Int32] = [-1, -1]
    private var plugins: (@Sendable (_ host: String, _ plugin: String, _ function: String, _ arguments: [String: String]) -> Result<String, FakeXapiPluginError>)?
    private let threads = DispatchGroup()

    /// Starts a fake xapi accepting `sessionRef`, on a Unix socket and, when `tcp`, on 127.0.0.1.
    public init(sessionRef: String = "OpaqueRef:" + UUID().uuidString.lowercased(), tcp: Bool = false) throws {
        self.sessionRef = sessionRef
        store.sessions.insert(sessionRef)
        directory = NSTemporaryDirectory() + "fakexapi-" + UUID().uuidString.prefix(8).lowercased()
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        socketPath = directory + "/xapi"
        guard pipe(&wakePipe) == 0 else { throw Self.posixError("pipe") }
        listeners.append(try Self.listenUnix(socketPath))
        if tcp {
            let (fd, port) = try Self.listenTCP()
            listeners.append(fd)
            tcpPort = port
        }
        threads.enter()
        let thread = Thread { [self] in
            acceptLoop()
            threads.leave()
        }
        thread.name = "FakeXapi accept"
        thread.start()
    }

    deinit { stop() }

    // MARK: - What tests configure and inspect

    /// The Unix-socket endpoint.
    public var unixEndpoint: XenAPIEndpoint { .unix(path: socketPath) }

    /// The TCP endpoint (`http://127.0.0.1:<port>/`), when TCP was asked for.
    public var tcpEndpoint: XenAPIEndpoint? { tcpPort.map { .tcp(host: "127.0.0.1", port: $0, path: "/") } }

    /// How responses are framed (`.contentLength` by default).
    public var responseMode: ResponseMode {
        get { lock.withLock { mode } }
        set { lock.withLock { mode = newValue } }
    }

    /// When true, the fake closes each connection right after answering, without saying so.
    public var dropConnectionsAfterResponse: Bool {
        get { lock.withLock { dropAfterResponse } }
        set { lock.withLock { dropAfterResponse = newValue } }
    }

    /// Runs `host.call_plugin(host, plugin, fn, args)` (outside the fake's lock, on the calling
    /// connection's thread): the test stands in for xapi running the plugin on that host. The
    /// result, or xapi's error description. Without a runner the call fails as on a host
    /// without the plugin.
    public func setPluginRunner(_ runner: @escaping @Sendable (_ host: String, _ plugin: String, _ function: String,
                                                               _ arguments: [String: String]) -> Result<String, FakeXapiPluginError>) {
        lock.withLock { plugins = runner }
    }

    /// When set, `session.login_with_password` accepts only these credentials.
    public func requireCredentials(username: String, password: String) {
        lock.withLock { store.credentials = (username, password) }
    }

    /// Adds an SR record and returns its reference.
    @discardableResult
    public func addSR(ref: String? = nil, uuid: String = UUID().uuidString.lowercased(), nameLabel: String = "SR", type: String = "ext",
               smConfig: [String: String] = [:], otherConfig: [String: String] = [:]) -> String {
        lock.withLock {
            store.addSR(ref: ref, uuid: uuid, nameLabel: nameLabel, type: type, smConfig: smConfig, otherConfig: otherConfig)
        }
    }

    /// Adds (or replaces) host `ref` with `otherConfig`.
    public func addHost(ref: String, otherConfig: [String: String] = [:]) { lock.withLock { store.hosts[ref] = otherConfig } }

    /// Makes host `ref` the pool master (`pool.get_master`).
    public func setPoolMaster(_ ref: String) { lock.withLock { store.poolMaster = ref } }

    /// Host `ref`'s `other_config`, nil for an unknown host.
    public func hostOtherConfig(_ ref: String) -> [String: String]? { lock.withLock { store.hosts[ref] } }

    /// Adds a PBD of SR `sr` on host `host`; returns its ref.
    @discardableResult
    public func addPBD(host: String, sr: String, otherConfig: [String: String] = [:]) -> String {
        let ref = FakeXapiStore.newRef()
        lock.withLock { store.pbds[ref] = FakePBD(host: host, sr: sr, otherConfig: otherConfig) }
        return ref
    }

    /// PBD records, by ref.
    public var pbds: [String: FakePBD] { lock.withLock { store.pbds } }

    /// Adds a secret holding `value`; returns its uuid.
    @discardableResult
    public func addSecret(_ value: String) -> String {
        let uuid = UUID().uuidString.lowercased()
        lock.withLock { store.secrets[FakeXapiStore.newRef()] = (uuid, value) }
        return uuid
    }

    /// Replaces an SR record (found by its `ref`).
    public func updateSR(_ sr: FakeSR) { lock.withLock { store.srs[sr.ref] = sr } }

    /// Replaces or adds a VDI record (found by its `ref`).
    public func updateVDI(_ vdi: FakeVDI) { lock.withLock { store.vdis[vdi.ref] = vdi } }

    /// The VDI records by reference.
    public var vdis: [String: FakeVDI] { lock.withLock { store.vdis } }

    /// The VDI records by uuid.
    public var vdisByUUID: [String: FakeVDI] {
        lock.withLock { Dictionary(store.vdis.values.map { ($0.uuid, $0) }, uniquingKeysWith: { first, _ in first }) }
    }

    /// The VDI with `uuid`, if any.
    public func vdi(uuid: String) -> FakeVDI? { lock.withLock { store.vdis.values.first { $0.uuid == uuid } } }

    /// The SR records by reference.
    public var srs: [String: FakeSR] { lock.withLock { store.srs } }

    /// The SR with `uuid`, if any.
    public func sr(uuid: String) -> FakeSR? { lock.withLock { store.srs.values.first { $0.uuid == uuid } } }

    /// The messages raised with `message.create`, in order.
    public var messages: [FakeMessage] { lock.withLock { store.messages } }

    /// The method names called, in order (including failed and unknown ones).
    public var calls: [String] { lock.withLock { store.calls } }

    /// Every request received, in order, with its HTTP header fields.
    public var requests: [FakeXapiRequest] { lock.withLock { store.requests } }

    /// The number of connections accepted so far.
    public var connectionsAccepted: Int { lock.withLock { accepted } }

    /// Forgets the recorded calls and requests (the database stays).
    public func clearCalls() { lock.withLock { store.calls.removeAll(); store.requests.removeAll() } }

    /// Accepts `refs` as valid sessions too (e.g. the `session_ref` of request documents).
    public func addSessions<S: Sequence>(_ refs: S) where S.Element == String {
        lock.withLock { for ref in refs { store.sessions.insert(ref) } }
    }

    /// When true, any session reference of the form `OpaqueRef:<uuid>` is accepted (xapi makes a
    /// fresh session per SMAPIv1 call; a test that generates calls need not register each one).
    public var acceptsAnyOpaqueSession: Bool {
        get { lock.withLock { store.acceptAnyOpaqueSession } }
        set { lock.withLock { store.acceptAnyOpaqueSession = newValue } }
    }

    /// Gives the VDI record `ref` the reference `newRef` (so a fixed reference of a request
    /// document, such as `vdi_ref` or a `vdi_compose` argument, names a record the driver introduced).
    public func renameVDIRef(_ ref: String, to newRef: String) {
        lock.withLock {
            guard var record = store.vdis.removeValue(forKey: ref) else { return }
            record.ref = newRef
            store.vdis[newRef] = record
        }
    }

    /// Removes the VDI record `ref` (as xapi's `VDI.forget`).
    public func removeVDI(ref: String) { _ = lock.withLock { store.vdis.removeValue(forKey: ref) } }

    // MARK: - Stopping

    /// Stops accepting, shuts every connection, waits for the server threads and removes the socket.
    public func stop() {
        let alreadyStopping: Bool = lock.withLock {
            defer { stopping = true }
            if !stopping {
                for fd in connections { _ = shutdown(fd, Int32(SHUT_RDWR)) }
            }
            return stopping
        }
        if alreadyStopping { return }
        var byte: UInt8 = 1
        _ = write(wakePipe[1], &byte, 1)
        _ = threads.wait(timeout: .now() + 10)
        for fd in wakePipe where fd >= 0 { _ = close(fd) }
        try? FileManager.default.removeItem(atPath: directory)
    }

    // MARK: - Serving

    private func acceptLoop() {
        defer {
            lock.withLock {
                for fd in listeners { _ = close(fd) }
                listeners.removeAll()
            }
        }
        let fds = lock.withLock { listeners }
        while true {
            var polls = fds.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            polls.append(pollfd(fd: wakePipe[0], events: Int16(POLLIN), revents: 0))
            let ready = poll(&polls, nfds_t(polls.count), -1)
            if ready < 0 { if errno == EINTR { continue } else { return } }
            if polls.last!.revents != 0 { return }
            for entry in polls.dropLast() where entry.revents & Int16(POLLIN) != 0 {
                let client = accept(entry.fd, nil, nil)
                guard client >= 0 else { continue }
                let admitted: Bool = lock.withLock {
                    guard !stopping else { return false }
                    accepted += 1
                    connections.insert(client)
                    return true
                }
                guard admitted else { _ = close(client); return }
                threads.enter()
                let thread = Thread { [self] in
                    serve(client)
                    _ = lock.withLock { connections.remove(client) }
                    _ = close(client)
                    threads.leave()
                }
                thread.name = "FakeXapi connection"
                thread.start()
            }
        }
    }

    /// Serves requests on one connection until the client closes it or the fake stops.
    private func serve(_ fd: Int32) {
        var buffer: [UInt8] = []
        while let (head, body) = Self.readRequest(fd, &buffer) {
            let headers = Self.headerFields(head)
            let call: XMLRPCMethodCall
            do {
                call = try XMLRPCDecoder().decodeMethodCall(Data(body))
            } catch {
                _ = Self.sendAll(fd, Array("HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n".utf8))
                return
            }
            var (result, currentMode, drop): (Result<XMLRPCValue, FakeXapiFailure>, ResponseMode, Bool) = lock.withLock {
                store.requests.append(FakeXapiRequest(method: call.methodName, params: call.params, headers: headers))
                return (store.handle(call), mode, dropAfterResponse)
            }
            if call.methodName == "host.call_plugin", case .success = result { result = runPlugin(call) }
            let envelope: XMLRPCValue
            switch result {
            case .success(let value):
                envelope = .struct([XMLRPCMember("Status", "Success"), XMLRPCMember("Value", value)])
            case .failure(let failure):
                envelope = .struct([XMLRPCMember("Status", "Failure"),
                                    XMLRPCMember("ErrorDescription", .array(failure.description.map { .string($0) }))])
            }
            let xml = Array(XMLRPCEncoder(style: .xapi).encode(XMLRPCMethodResponse.success(envelope)).utf8)
            guard Self.respond(fd, xml, currentMode, &buffer) else { return }
            if drop || headers["connection"]?.lowercased() == "close" { return }
        }
    }

    /// `host.call_plugin` (session and arguments already checked by the store) through the runner.
    private func runPlugin(_ call: XMLRPCMethodCall) -> Result<XMLRPCValue, FakeXapiFailure> {
        let p = call.params
        guard p.count == 5, let host = p[1].stringValue, let plugin = p[2].stringValue, let function = p[3].stringValue,
              let members = p[4].structMembers else {
            return .failure(FakeXapiFailure(["MESSAGE_PARAMETER_COUNT_MISMATCH", "host.call_plugin", "5", "\(p.count)"]))
        }
        var arguments: [String: String] = [:]
        for m in members { arguments[m.name] = m.value.stringValue ?? "" }
        guard let runner = lock.withLock({ plugins }) else {
            return .failure(FakeXapiFailure(["XENAPI_MISSING_PLUGIN", plugin]))
        }
        switch runner(host, plugin, function, arguments) {
        case .success(let text): return .success(.string(text))
        case .failure(let error): return .failure(FakeXapiFailure(error.description))
        }
    }

    /// Writes the response in `mode`; returns false when the connection must end.
    private static func respond(_ fd: Int32, _ xml: [UInt8], _ mode: ResponseMode, _ buffer: inout [UInt8]) -> Bool {
        let common = "HTTP/1.1 200 OK\r\nconnection: keep-alive\r\ncache-control: no-cache, no-store\r\ncontent-type: text/xml\r\n"
        switch mode {
        case .contentLength:
            return sendAll(fd, Array((common + "content-length: \(xml.count)\r\n\r\n").utf8) + xml)
        case .chunked(let size):
            var out = Array((common + "Transfer-Encoding: chunked\r\n\r\n").utf8)
            var offset = 0
            var first = true
            while offset < xml.count {
                let end = min(offset + max(1, size), xml.count)
                let sizeLine = String(end - offset, radix: 16, uppercase: true) + (first ? ";note=first" : "")
                out += Array((sizeLine + "\r\n").utf8) + xml[offset..<end] + [0x0D, 0x0A]
                offset = end
                first = false
            }
            out += Array("0\r\nX-Trailer: done\r\n\r\n".utf8)
            return sendAll(fd, out)
        case .untilClose:
            let head = "HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-type: text/xml\r\n\r\n"
            _ = sendAll(fd, Array(head.utf8) + xml)
            return false
        case .truncated(let afterBytes):
            let full = Array((common + "content-length: \(xml.count)\r\n\r\n").utf8) + xml
            _ = sendAll(fd, Array(full.prefix(afterBytes)))
            return false
        case .silent:
            // Never answer: wait until the client hangs up or the fake is stopped (shutdown).
            var scratch = [UInt8](repeating: 0, count: 4096)
            while recv(fd, &scratch, scratch.count, 0) > 0 {}
            return false
        case .httpStatus(let status):
            let head = "HTTP/1.1 \(status) Error\r\nconnection: keep-alive\r\ncontent-length: 0\r\n\r\n"
            return sendAll(fd, Array(head.utf8))
        }
    }

    /// Reads one request (header section and `content-length` body); nil at end of stream.
    private static func readRequest(_ fd: Int32, _ buffer: inout [UInt8]) -> (head: String, body: [UInt8])? {
        let terminator: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A]
        var headEnd: Int?
        while headEnd == nil {
            if let range = buffer.firstRange(of: terminator) { headEnd = range.lowerBound; break }
            guard buffer.count < 1 << 20, receive(fd, &buffer) else { return nil }
        }
        let head = String(decoding: buffer[..<headEnd!], as: UTF8.self)
        buffer.removeFirst(headEnd! + 4)
        let length = Int(headerFields(head)["content-length"] ?? "0") ?? 0
        while buffer.count < length {
            guard receive(fd, &buffer) else { return nil }
        }
        let body = Array(buffer[..<length])
        buffer.removeFirst(length)
        return (head, body)
    }

    /// The header fields of a request head, names lower-cased (the request line is skipped).
    private static func headerFields(_ head: String) -> [String: String] {
        var fields: [String: String] = [:]
        for line in head.split(separator: "\r\n").dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            fields[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        }
        return fields
    }

    /// Appends whatever arrives; false at end of stream or on error.
    private static func receive(_ fd: Int32, _ buffer: inout [UInt8]) -> Bool {
        var scratch = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = recv(fd, &scratch, scratch.count, 0)
            if count > 0 { buffer += scratch[..<count]; return true }
            if count < 0 && errno == EINTR { continue }
            return false
        }
    }

    /// Writes every byte; false when the peer has gone.
    private static func sendAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let sent = bytes.withUnsafeBytes { send(fd, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL)) }
            if sent < 0 { if errno == EINTR { continue } else { return false } }
            offset += sent
        }
        return true
    }

    // MARK: - Listening sockets

    private static func listenUnix(_ path: String) throws -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw posixError("socket") }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard bound == 0, listen(fd, 16) == 0 else { let error = posixError("bind/listen \(path)"); _ = close(fd); throw error }
        return fd
    }

    private static func listenTCP() throws -> (Int32, UInt16) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw posixError("socket") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard bound == 0, listen(fd, 16) == 0 else { let error = posixError("bind/listen tcp"); _ = close(fd); throw error }
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { let error = posixError("getsockname"); _ = close(fd); throw error }
        return (fd, UInt16(bigEndian: address.sin_port))
    }

    private static func posixError(_ what: String) -> NSError {
        NSError(domain: NSPOSIXErrorDomain, code: Int(errno),
                userInfo: [NSLocalizedDescriptionKey: "\(what): \(String(cString: strerror(errno)))"])
    }
}
