import Foundation
import Testing
@testable import Toolstack
import XenAPIWire
#if canImport(Glibc)
import Glibc
#endif

/// `VDI.get_nbd_info` and the NBD-over-TLS server behind it, driven by real NBD clients (nbdcopy,
/// nbdinfo from libnbd, qemu-img) over TLS, with what comes back checked by content hash.
@Suite(.serialized) struct NBDTests {
    private func strings(_ v: XMLRPCValue) -> [String] { v.arrayValue?.compactMap(\.stringValue) ?? [] }

    /// `nbds://` for libnbd: the export name percent-encoded in the path.
    private func uri(_ info: XMLRPCValue, certificates: String) -> String {
        let name = info[member: "exportname"]!.stringValue!
        let encoded = name.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-._~")))!
        return "nbds://\(info[member: "address"]!.stringValue!):\(info[member: "port"]!.stringValue!)/\(encoded)?tls-certificates=\(certificates)"
    }

    private func sha256(_ path: String, bytes: Int? = nil) throws -> String {
        let command = bytes.map { "head -c \($0) '\(path)' | sha256sum" } ?? "sha256sum '\(path)'"
        let (status, out, _) = try Executables.run("/bin/sh", ["-c", command])
        #expect(status == 0)
        return String(out.prefix(64))
    }

    private func waitForNoVBDs(_ c: XenAPIConnection, _ vdi: String) throws -> Bool {
        for _ in 0..<100 {
            if strings(try c.call("VDI.get_VBDs", [.string(vdi)])).isEmpty { return true }
            usleep(50_000)
        }
        return false
    }

    @Test func backupToolsReadAndWriteVDIsOverNBDWithTLS() throws {
        let ts = try TestToolstack(nbd: true)
        defer { ts.destroy() }
        let c = try ts.client()
        let sr = try ts.createSR(c)
        let vdi = try ts.createVDI(c, sr: sr, name: "nbd-disk", size: 32 << 20)
        let uuid = try c.call("VDI.get_uuid", [.string(vdi)]).stringValue!
        let port = try #require(ts.service.nbdPort)

        // No network is NBD-enabled yet: no way in, as on xapi.
        #expect(try c.call("VDI.get_nbd_info", [.string(vdi)]).arrayValue == [])
        let pif = try #require(try c.call("PIF.get_all").arrayValue?.first)
        let network = try c.call("PIF.get_network", [pif])
        _ = try c.call("network.add_purpose", [network, "nbd"])
        let infos = try c.call("VDI.get_nbd_info", [.string(vdi)]).arrayValue ?? []
        try #require(infos.count == 1)
        let info = infos[0]
        #expect(info[member: "address"] == "127.0.0.1")
        #expect(info[member: "port"] == .string(String(port)))
        #expect(info[member: "exportname"] == .string("/\(uuid)?session_id=\(c.session!)"))
        #expect(info[member: "subject"] == .string(ts.configuration.hostname))
        let cert = info[member: "cert"]!.stringValue!
        #expect(cert.hasPrefix("-----BEGIN CERTIFICATE-----"))
        #expect(!cert.contains("PRIVATE KEY"))
        #expect(try c.call("host.get_server_certificate", [.string(ts.service.hostRef)]) == .string(cert))

        // The client trusts exactly the certificate get_nbd_info gave.
        let dir = ts.root + "/nbdtls"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        try cert.write(toFile: dir + "/ca-cert.pem", atomically: true, encoding: .utf8)

        // Write 8 MiB of random data through NBD (the VDI is attached for the connection only).
        let data = ts.root + "/data.bin"
        var (status, out, err) = try Executables.run("/bin/sh", ["-c", "head -c \(8 << 20) /dev/urandom > '\(data)'"])
        #expect(status == 0)
        let written = try sha256(data)
        (status, out, err) = try Executables.run("/usr/bin/nbdcopy", [data, uri(info, certificates: dir)])
        #expect(status == 0, "nbdcopy write: \(out) \(err)")
        #expect(try waitForNoVBDs(c, vdi), "the VBD made for the connection is gone after it")
        #expect(try c.call("VDI.get_sm_config", [.string(vdi)])[member: "host_\(ts.service.hostRef)"] == nil)

        // A snapshot (what backup tools read): attached read-only for the connection.
        let snap = try c.call("VDI.snapshot", [.string(vdi), .struct([])]).stringValue!
        let snapInfo = try #require(try c.call("VDI.get_nbd_info", [.string(snap)]).arrayValue?.first)
        let back = ts.root + "/back.raw"
        (status, out, err) = try Executables.run("/usr/bin/nbdcopy", [uri(snapInfo, certificates: dir), back])
        #expect(status == 0, "nbdcopy read: \(out) \(err)")
        #expect(try sha256(back, bytes: 8 << 20) == written)
        #expect((try FileManager.default.attributesOfItem(atPath: back)[.size] as? Int) == 32 << 20)
        let (_, zeroTail, _) = try Executables.run("/bin/sh", ["-c", "tail -c +\((8 << 20) + 1) '\(back)' | tr -d '\\0' | wc -c"])
        #expect(zeroTail.trimmingCharacters(in: .whitespacesAndNewlines) == "0")
        #expect(try waitForNoVBDs(c, snap))

        // A VDI already plugged is served through its own attachment (no second VBD), and
        // qemu-img reads it too, with its own TLS stack.
        let dom0 = try c.call("VM.get_all").arrayValue![0]
        let vbd = try c.call("VBD.create", [.struct([
            XMLRPCMember("VM", dom0), XMLRPCMember("VDI", .string(vdi)), XMLRPCMember("userdevice", "3"),
            XMLRPCMember("mode", "RW"), XMLRPCMember("type", "Disk"),
        ])]).stringValue!
        _ = try c.call("VBD.plug", [.string(vbd)])
        let qemuOut = ts.root + "/qemu.raw"
        (status, out, err) = try Executables.run("/usr/bin/qemu-img", [
            "convert", "-O", "raw", "--object", "tls-creds-x509,id=tls0,dir=\(dir),endpoint=client", "--image-opts",
            "driver=raw,file.driver=nbd,file.server.type=inet,file.server.host=127.0.0.1,file.server.port=\(port),"
                + "file.export=\(info[member: "exportname"]!.stringValue!),file.tls-creds=tls0", qemuOut,
        ])
        #expect(status == 0, "qemu-img: \(out) \(err)")
        #expect(try sha256(qemuOut, bytes: 8 << 20) == written)
        #expect(strings(try c.call("VDI.get_VBDs", [.string(vdi)])) == [vbd])
        _ = try c.call("VBD.unplug", [.string(vbd)])
        _ = try c.call("VBD.destroy", [.string(vbd)])

        // A forged session in the export name is refused, and nothing is attached for it.
        var forged = info.structMembers!
        forged[forged.firstIndex { $0.name == "exportname" }!] = XMLRPCMember("exportname", .string("/\(uuid)?session_id=OpaqueRef:\(UUID().uuidString.lowercased())"))
        (status, out, err) = try Executables.run("/usr/bin/nbdinfo", [uri(.struct(forged), certificates: dir)])
        #expect(status != 0, "a forged session must be refused: \(out)")
        #expect(strings(try c.call("VDI.get_VBDs", [.string(vdi)])).isEmpty)
        // A logged-out session's export name stops working.
        let other = try ts.client()
        let otherInfo = try #require(try other.call("VDI.get_nbd_info", [.string(snap)]).arrayValue?.first)
        _ = try other.call("session.logout")
        (status, _, _) = try Executables.run("/usr/bin/nbdinfo", [uri(otherInfo, certificates: dir)])
        #expect(status != 0)
        // An unknown VDI.
        (status, _, _) = try Executables.run("/usr/bin/nbdinfo", [uri(.struct(info.structMembers!.map {
            $0.name == "exportname" ? XMLRPCMember("exportname", .string("/\(UUID().uuidString.lowercased())?session_id=\(c.session!)")) : $0
        }), certificates: dir)])
        #expect(status != 0)

        // Garbage: unknown client flags, a bad option magic: the connection is dropped, nothing else.
        #expect(try rawExchange(port: port, [0xff, 0xff, 0xff, 0xff]) == 0)
        #expect(try rawExchange(port: port, [0, 0, 0, 3] + Array(repeating: 0x41, count: 16)) == 0)
        // Without STARTTLS: every option is answered NBD_REP_ERR_TLS_REQD, and nbdinfo in clear fails.
        #expect(try plainOptionReply(port: port, export: info[member: "exportname"]!.stringValue!) == 0x8000_0005)
        let secure = uri(snapInfo, certificates: dir)
        let plain = "nbd://" + String(secure.dropFirst("nbds://".count).prefix { $0 != "?" })
        (status, _, err) = try Executables.run("/usr/bin/nbdinfo", ["--size", plain])
        #expect(status != 0)
        #expect(err.contains("TLS") || err.contains("tls"), "\(err)")
        // NOTLS, as xapi: when every NBD network is marked insecure_nbd, clients may skip TLS.
        _ = try c.call("network.remove_purpose", [network, "nbd"])
        _ = try c.call("network.add_purpose", [network, "insecure_nbd"])
        #expect(try c.call("VDI.get_nbd_info", [.string(snap)]).arrayValue?.count == 1)
        (status, out, err) = try Executables.run("/usr/bin/nbdinfo", ["--size", plain])
        #expect(status == 0, "\(err)")
        #expect(out.trimmingCharacters(in: .whitespacesAndNewlines) == String(32 << 20))
        #expect(try waitForNoVBDs(c, snap))
        _ = try c.call("network.remove_purpose", [network, "insecure_nbd"])
        _ = try c.call("network.add_purpose", [network, "nbd"])
        (status, _, _) = try Executables.run("/usr/bin/nbdinfo", ["--size", plain])
        #expect(status != 0)
        // A client that does not trust the certificate does not get through.
        let stranger = ts.root + "/stranger"
        try FileManager.default.createDirectory(atPath: stranger, withIntermediateDirectories: true)
        (status, _, _) = try Executables.run("/usr/bin/openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                                                                 "-keyout", stranger + "/k.pem", "-out", stranger + "/ca-cert.pem", "-subj", "/CN=other"])
        #expect(status == 0)
        (status, _, _) = try Executables.run("/usr/bin/nbdinfo", [uri(info, certificates: stranger)])
        #expect(status != 0)

        // The server is still serving after all that.
        (status, out, err) = try Executables.run("/usr/bin/nbdinfo", ["--size", uri(snapInfo, certificates: dir)])
        #expect(status == 0, "\(err)")
        #expect(out.trimmingCharacters(in: .whitespacesAndNewlines) == String(32 << 20))
        #expect(try waitForNoVBDs(c, snap))
    }

    /// Connects in clear, sends `NBD_OPT_GO` for `export` without STARTTLS; the reply type.
    private func plainOptionReply(port: Int, export: String) throws -> UInt32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard rc == 0 else { throw TestToolstack.Failure(description: "connect failed") }
        func readExactly(_ n: Int) -> [UInt8] {
            var out: [UInt8] = []
            var buf = [UInt8](repeating: 0, count: n)
            while out.count < n {
                let got = recv(fd, &buf, n - out.count, 0)
                if got <= 0 { break }
                out += buf[0..<got]
            }
            return out
        }
        func be(_ v: some FixedWidthInteger) -> [UInt8] { withUnsafeBytes(of: v.bigEndian) { Array($0) } }
        let greeting = readExactly(18)
        #expect(greeting.count == 18 && Array(greeting[0..<8]) == Array("NBDMAGIC".utf8))
        let name = Array(export.utf8)
        var request = be(UInt32(3))
        request += be(UInt64(0x4948_4156_454f_5054)) + be(UInt32(7)) + be(UInt32(4 + name.count + 2)) + be(UInt32(name.count)) + name + be(UInt16(0))
        _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        let reply = readExactly(20)
        guard reply.count == 20 else { return 0 }
        return reply[12..<16].reduce(0) { $0 << 8 | UInt32($1) }
    }

    /// Connects in clear, reads the greeting, sends `bytes`; how many bytes the server answers
    /// before it closes the connection.
    private func rawExchange(port: Int, _ bytes: [UInt8]) throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let rc = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard rc == 0 else { throw TestToolstack.Failure(description: "connect failed") }
        var timeout = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var greeting = [UInt8](repeating: 0, count: 18)
        var got = 0
        while got < 18 {
            let n = greeting.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + got, 18 - got, 0) }
            if n <= 0 { throw TestToolstack.Failure(description: "no greeting") }
            got += n
        }
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        var answered = 0
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = recv(fd, &buf, buf.count, 0)
            if n == 0 { return answered }
            if n < 0 { throw TestToolstack.Failure(description: "the server neither answered nor closed") }
            answered += n
        }
    }
}
