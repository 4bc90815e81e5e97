import Foundation
import Testing
@testable import Toolstack
import XenAPIWire
#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized) struct APITests {
    private func failure(_ body: () throws -> Any) -> [String]? {
        do { _ = try body(); return nil } catch let f as APIFailure { return f.errorDescription } catch { return ["other: \(error)"] }
    }

    @Test func loginLocalTrustsRootTCPChecksThePassword() throws {
        let ts = try TestToolstack(tcp: true)
        defer { ts.destroy() }
        let local = XenAPIConnection(endpoint: .unix(ts.configuration.socketPath))
        let session = try local.login(user: "root", password: "anything")
        #expect(session.hasPrefix("OpaqueRef:"))
        #expect(try local.call("session.get_this_host", [.string(session)]).stringValue == ts.service.hostRef)
        let port = try #require(ts.server.boundPort)
        // TCP is HTTPS with a certificate made at first start; plain HTTP gets no answer.
        let pem = try String(contentsOfFile: ts.configuration.stateDirectory + "/xapi-ssl.pem", encoding: .utf8)
        #expect(pem.contains("BEGIN CERTIFICATE") && pem.contains("PRIVATE KEY"))
        #expect(throws: (any Error).self) { try XenAPIConnection(endpoint: .tcp("127.0.0.1", port)).login(user: "root", password: TestToolstack.password) }
        let tcp = XenAPIConnection(endpoint: .tls("127.0.0.1", port), trust: .anyCertificate)
        #expect(failure { try tcp.login(user: "root", password: "wrong") } == ["SESSION_AUTHENTICATION_FAILED", "root", "Authentication failure"])
        #expect(failure { try tcp.login(user: "root", password: "") } == ["SESSION_AUTHENTICATION_FAILED", "root", "Authentication failure"])
        #expect(failure { try tcp.login(user: "admin", password: TestToolstack.password) }?.first == "SESSION_AUTHENTICATION_FAILED")
        _ = try tcp.login(user: "root", password: TestToolstack.password)
        #expect(try tcp.call("pool.get_all").arrayValue?.count == 1)
        let plain = try TestToolstack(tcp: true, plain: true)
        defer { plain.destroy() }
        let http = XenAPIConnection(endpoint: .tcp("127.0.0.1", try #require(plain.server.boundPort)))
        #expect(failure { try http.login(user: "root", password: "") }?.first == "SESSION_AUTHENTICATION_FAILED")
        _ = try http.login(user: "root", password: TestToolstack.password)
        // The socket is root's alone.
        var st = stat()
        #expect(stat(ts.configuration.socketPath, &st) == 0)
        #expect(st.st_mode & 0o777 == 0o600)
    }

    @Test func badCallsFailAsXapiAndChangeNothing() throws {
        let ts = try TestToolstack()
        defer { ts.destroy() }
        let c = try ts.client()
        let forged = "OpaqueRef:" + UUID().uuidString.lowercased()
        #expect(failure { try c.callRaw("VDI.get_all", [.string(forged)]) } == ["SESSION_INVALID", forged])
        #expect(failure { try c.call("VDI.frobnicate") } == ["MESSAGE_METHOD_UNKNOWN", "VDI.frobnicate"])
        #expect(failure { try c.call("VDI.get_all", ["extra"]) } == ["MESSAGE_PARAMETER_COUNT_MISMATCH", "VDI.get_all", "1", "2"])
        #expect(failure { try c.call("VDI.get_record", [.string(forged)]) } == ["HANDLE_INVALID", "VDI", forged])
        #expect(failure { try c.call("VDI.get_by_uuid", ["nope"]) } == ["UUID_INVALID", "VDI", "nope"])
        let pool = try c.call("pool.get_all").arrayValue![0]
        #expect(failure { try c.call("pool.set_name_label", [pool, .int(3)]) } == ["FIELD_TYPE_ERROR", "value"])
        #expect(failure { try c.call("pool.set_master", [pool, pool]) } == ["MESSAGE_METHOD_UNKNOWN", "pool.set_master"])
        // Map operations.
        _ = try c.call("pool.add_to_other_config", [pool, "k", "v"])
        #expect(failure { try c.call("pool.add_to_other_config", [pool, "k", "w"]) }?.first == "MAP_DUPLICATE_KEY")
        #expect(try c.call("pool.get_other_config", [pool]) == .struct([XMLRPCMember("k", "v")]))
        _ = try c.call("pool.remove_from_other_config", [pool, "k"])
        #expect(try c.call("pool.get_other_config", [pool]) == .struct([]))
        // Malformed XML and an unknown path: an error answer, and the daemon keeps serving.
        let raw = try RawHTTP.post(ts.configuration.socketPath, path: "/", body: "<methodCall><methodName>x</methodName><params><param><value><struct>")
        #expect(raw.contains("XMLRPC_UNMARSHAL_FAILURE"))
        #expect(try RawHTTP.post(ts.configuration.socketPath, path: "/nowhere", body: "x").hasPrefix("HTTP/1.1 404"))
        let huge = String(repeating: "A", count: ts.configuration.maxBodyBytes + 10)
        #expect(try RawHTTP.post(ts.configuration.socketPath, path: "/", body: huge).hasPrefix("HTTP/1.1 413"))
        #expect(try c.call("pool.get_all").arrayValue?.count == 1)
    }

    @Test func jsonRPCAnswersWithTypedResultsAndErrors() throws {
        let ts = try TestToolstack()
        defer { ts.destroy() }
        let login = try RawHTTP.json(ts.configuration.socketPath, ["jsonrpc": "2.0", "method": "session.login_with_password",
                                                                    "params": ["root", "", "2.0", "test"], "id": 1])
        let session = try #require(login["result"] as? String)
        let hosts = try RawHTTP.json(ts.configuration.socketPath, ["jsonrpc": "2.0", "method": "host.get_all", "params": [session], "id": 2])
        let host = try #require((hosts["result"] as? [String])?.first)
        let major = try RawHTTP.json(ts.configuration.socketPath, ["jsonrpc": "2.0", "method": "host.get_API_version_major", "params": [session, host], "id": 3])
        #expect((major["result"] as? NSNumber)?.intValue == 2)
        #expect((major["id"] as? NSNumber)?.intValue == 3)
        let record = try RawHTTP.json(ts.configuration.socketPath, ["jsonrpc": "2.0", "method": "host.get_record", "params": [session, host], "id": 5])
        let fields = try #require(record["result"] as? [String: Any])
        #expect((fields["API_version_major"] as? NSNumber)?.intValue == 2)
        #expect(fields["enabled"] as? Bool == true)
        let bad = try RawHTTP.json(ts.configuration.socketPath, ["jsonrpc": "2.0", "method": "VDI.get_record", "params": [session, "OpaqueRef:x"], "id": 4])
        let error = try #require(bad["error"] as? [String: Any])
        #expect(error["message"] as? String == "HANDLE_INVALID")
        #expect(error["data"] as? [String] == ["VDI", "OpaqueRef:x"])
    }

    @Test func aSecondOperationOnABusyObjectFails() throws {
        let ts = try TestToolstack()
        defer { ts.destroy() }
        let c = try ts.client()
        let sr = try ts.createSR(c)
        let vdi = try ts.createVDI(c, sr: sr)
        try ts.service.withOperation("VDI", vdi, "snapshot", task: "OpaqueRef:held") { () throws -> Void in
            #expect(try c.call("VDI.get_current_operations", [.string(vdi)]) == .struct([XMLRPCMember("OpaqueRef:held", "snapshot")]))
            #expect(try c.call("VDI.get_allowed_operations", [.string(vdi)]) == .array([]))
            #expect(failure { try c.call("VDI.clone", [.string(vdi), .struct([])]) } == ["OTHER_OPERATION_IN_PROGRESS", "VDI", vdi, "snapshot"])
            #expect(failure { try c.call("VDI.destroy", [.string(vdi)]) }?.first == "OTHER_OPERATION_IN_PROGRESS")
        }
        #expect(try c.call("VDI.get_current_operations", [.string(vdi)]) == .struct([]))
        #expect(try c.call("VDI.get_allowed_operations", [.string(vdi)]).arrayValue?.contains("snapshot") == true)
        _ = try c.call("VDI.destroy", [.string(vdi)])
    }
}

/// Raw HTTP over the unix socket, for what a well-behaved client never sends.
enum RawHTTP {
    static func post(_ socketPath: String, path: String, body: String) throws -> String {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in for (i, b) in socketPath.utf8.enumerated() { raw[i] = b } }
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        guard rc == 0 else { throw TestToolstack.Failure(description: "connect failed") }
        let bytes = Array("POST \(path) HTTP/1.1\r\nHost: x\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)".utf8)
        var off = 0
        while off < bytes.count {
            let n = bytes[off...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { break }
            off += n
        }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = recv(fd, &buf, buf.count, 0)
            if n <= 0 { break }
            out += buf[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func json(_ socketPath: String, _ request: [String: Any]) throws -> [String: Any] {
        let body = String(decoding: try JSONSerialization.data(withJSONObject: request), as: UTF8.self)
        let text = try post(socketPath, path: "/jsonrpc", body: body)
        guard let split = text.range(of: "\r\n\r\n") else { throw TestToolstack.Failure(description: "no HTTP body") }
        return try JSONSerialization.jsonObject(with: Data(text[split.upperBound...].utf8)) as? [String: Any] ?? [:]
    }
}
