import Foundation
import Testing
@testable import Toolstack
import XenAPIWire

@Suite(.serialized) struct XeTests {
    @Test func storageCommandsEndToEnd() throws {
        let ts = try TestToolstack()
        defer { ts.destroy() }
        let xe = try Executables.require("xe")
        let env = ["XE_SOCKET": ts.configuration.socketPath]
        func run(_ args: String...) throws -> (Int32, String, String) { try Executables.run(xe, args, env: env) }
        func ok(_ args: String...) throws -> String {
            let (status, out, err) = try Executables.run(xe, args, env: env)
            #expect(status == 0, "xe \(args): \(err)")
            return out
        }
        let isUUID = { (s: String) in UUID(uuidString: s.trimmingCharacters(in: .newlines)) != nil && s.hasSuffix("\n") && s.count == 37 }
        let sr = try ok("sr-create", "name-label=Local", "type=ext", "device-config:path=\(ts.srDirectory)")
        #expect(isUUID(sr))
        let srUUID = sr.trimmingCharacters(in: .newlines)
        let vdi = try ok("vdi-create", "sr-uuid=\(srUUID)", "name-label=d0", "virtual-size=64MiB")
        #expect(isUUID(vdi))
        let v = vdi.trimmingCharacters(in: .newlines)
        #expect(try ok("vdi-param-get", "uuid=\(v)", "param-name=virtual-size") == "\(64 << 20)\n")
        let snap = try ok("vdi-snapshot", "uuid=\(v)").trimmingCharacters(in: .newlines)
        let clone = try ok("vdi-clone", "uuid=\(snap)", "new-name-label=c1").trimmingCharacters(in: .newlines)
        #expect(try ok("vdi-param-get", "uuid=\(clone)", "param-name=name-label") == "c1\n")
        #expect(try ok("vdi-param-get", "uuid=\(snap)", "param-name=is-a-snapshot") == "true\n")
        let minimal = try ok("vdi-list", "sr-uuid=\(srUUID)", "managed=true", "--minimal")
        #expect(Set(minimal.trimmingCharacters(in: .newlines).split(separator: ",").map(String.init)) == [v, snap, clone])
        // Record output: suffixes and aligned colons.
        let list = try ok("vdi-list", "uuid=\(v)")
        let lines = list.split(separator: "\n").map(String.init).filter { !$0.isEmpty }
        #expect(lines.first == "uuid ( RO)                : \(v)")
        #expect(lines.contains("          name-label ( RW): d0"))
        #expect(lines.contains("             sr-uuid ( RO): \(srUUID)"))
        let colons = lines.map { line -> Int in
            guard let paren = line.firstIndex(of: ")"), let colon = line[paren...].firstIndex(of: ":") else { return -1 }
            return line.distance(from: line.startIndex, to: colon)
        }
        #expect(Set(colons).count == 1 && colons[0] > 0, "\(lines)")
        let params = try ok("vdi-param-list", "uuid=\(v)")
        #expect(params.contains("other-config (MRW): "))
        #expect(params.contains("allowed-operations (SRO): "))
        _ = try ok("vdi-param-set", "uuid=\(v)", "name-label=renamed", "other-config:owner=me")
        #expect(try ok("vdi-param-get", "uuid=\(v)", "param-name=other-config", "param-key=owner") == "me\n")
        #expect(try ok("vdi-list", "name-label=renamed", "params=uuid", "--minimal") == "\(v)\n")
        _ = try ok("vdi-resize", "uuid=\(v)", "disk-size=128MiB")
        #expect(try ok("vdi-param-get", "uuid=\(v)", "param-name=virtual-size") == "\(128 << 20)\n")
        // VBDs on the control domain.
        let dom0 = try ok("vm-list", "is-control-domain=true", "--minimal").trimmingCharacters(in: .newlines)
        let vbd = try ok("vbd-create", "vm-uuid=\(dom0)", "device=0", "vdi-uuid=\(v)").trimmingCharacters(in: .newlines)
        _ = try ok("vbd-plug", "uuid=\(vbd)")
        #expect(try ok("vbd-param-get", "uuid=\(vbd)", "param-name=currently-attached") == "true\n")
        let (inUse, _, inUseErr) = try run("vdi-destroy", "uuid=\(v)")
        #expect(inUse == 1)
        // xe's friendlier text: the error's description, then its parameters by name.
        #expect(inUseErr.hasPrefix("This operation cannot be performed because this VDI is in use by some other operation\nvdi: OpaqueRef:"))
        #expect(inUseErr.hasSuffix("\noperation: destroy\n"))
        _ = try ok("vbd-unplug", "uuid=\(vbd)")
        _ = try ok("vbd-destroy", "uuid=\(vbd)")
        // Errors: xapi's code and parameters, exit status 1.
        let (status, out, err) = try run("vdi-destroy", "uuid=no-such-uuid")
        #expect(status == 1)
        #expect(out.isEmpty)
        #expect(err == "The uuid you supplied was invalid.\ntype: VDI\nuuid: no-such-uuid\n")
        // An error xe has no description for: its code and parameters.
        let (unknownType, _, unknownTypeErr) = try run("sr-create", "name-label=x", "type=nosuch", "device-config:path=/tmp")
        #expect(unknownType == 1)
        #expect(unknownTypeErr == "The SR could not be connected because the driver was not recognised.\ndriver: nosuch\n")
        let (badSize, _, badSizeErr) = try run("vdi-resize", "uuid=\(v)", "disk-size=12")
        #expect(badSize == 1)
        #expect(badSizeErr.hasPrefix("Error code: SR_BACKEND_FAILURE_"), "\(badSizeErr)")
        let (missing, _, missingErr) = try run("vdi-create", "sr-uuid=\(srUUID)")
        #expect(missing == 1 && missingErr.contains("Required parameter not found: name-label"))
        #expect(try run("frob-nicate").0 == 1)
        #expect(try ok("sm-list", "params=type", "--minimal") == "ext\n")
        #expect(try ok("help").contains("vdi-snapshot"))
        // Tear down through xe.
        for u in [clone, snap, v] { _ = try ok("vdi-destroy", "uuid=\(u)") }
        let pbd = try ok("pbd-list", "sr-uuid=\(srUUID)", "--minimal").trimmingCharacters(in: .newlines)
        _ = try ok("pbd-unplug", "uuid=\(pbd)")
        _ = try ok("sr-destroy", "uuid=\(srUUID)")
        #expect(try ok("sr-list", "--minimal") == "\n")
    }

    @Test func tcpNeedsTheRightPasswordAndAVerifiedCertificate() throws {
        let ts = try TestToolstack(tcp: true)
        defer { ts.destroy() }
        let xe = try Executables.require("xe")
        let port = String(try #require(ts.server.boundPort))
        let cert = ts.root + "/host-cert.pem"
        try ts.service.serverCertificatePEM().write(toFile: cert, atomically: true, encoding: .utf8)
        let (bad, _, badErr) = try Executables.run(xe, ["-s", "127.0.0.1", "-p", port, "--cafile", cert, "-u", "root", "-pw", "nope", "pool-list"])
        #expect(bad == 1)
        #expect(badErr.hasPrefix("Error code: SESSION_AUTHENTICATION_FAILED"))
        let (good, out, _) = try Executables.run(xe, ["-s", "127.0.0.1", "-p", port, "--cafile", cert, "-u", "root", "-pw", TestToolstack.password, "host-list", "--minimal"])
        #expect(good == 0)
        #expect(out.trimmingCharacters(in: .newlines) == (try ts.client().call("host.get_uuid", [.string(ts.service.hostRef)]).stringValue))
        // No silent acceptance of the self-signed certificate: the system's CAs do not vouch for it,
        // a CA that did not sign it does not either, and the password is never sent.
        let (unverified, _, unverifiedErr) = try Executables.run(xe, ["-s", "127.0.0.1", "-p", port, "-u", "root", "-pw", TestToolstack.password, "host-list"])
        #expect(unverified != 0)
        #expect(unverifiedErr.contains("could not be verified"), "\(unverifiedErr)")
        #expect(!unverifiedErr.contains(TestToolstack.password))
        let other = ts.root + "/other"
        try FileManager.default.createDirectory(atPath: other, withIntermediateDirectories: true)
        _ = try Executables.run("/usr/bin/openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-keyout", other + "/k.pem",
                                                     "-out", other + "/c.pem", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"])
        let (wrongCA, _, _) = try Executables.run(xe, ["-s", "127.0.0.1", "-p", port, "--cafile", other + "/c.pem", "-u", "root", "-pw", TestToolstack.password, "host-list"])
        #expect(wrongCA != 0)
        // The certificate names the host: reached by another name, it is refused.
        let (wrongName, _, _) = try Executables.run(xe, ["-s", "127.0.0.2", "-p", port, "--cafile", cert, "-u", "root", "-pw", TestToolstack.password, "host-list"])
        #expect(wrongName != 0)
        // By name: the certificate names localhost too (checked as a DNS name, sent as SNI).
        let (byName, _, byNameErr) = try Executables.run(xe, ["-s", "localhost", "-p", port, "--cafile", cert, "-u", "root", "-pw", TestToolstack.password, "host-list"])
        #expect(byName == 0, "\(byNameErr)")
        // The certificate to trust from the environment.
        let (fromEnv, _, _) = try Executables.run(xe, ["-s", "127.0.0.1", "-p", port, "-u", "root", "-pw", TestToolstack.password, "host-list"],
                                                  env: ["XE_CAFILE": cert])
        #expect(fromEnv == 0)
        // Accepting any certificate only when asked.
        let (insecure, _, _) = try Executables.run(xe, ["-s", "127.0.0.1", "-p", port, "--no-verify", "-u", "root", "-pw", TestToolstack.password, "host-list"])
        #expect(insecure == 0)
    }

    @Test func multipleAppliesTheCommandToEverySelectedObject() throws {
        let ts = try TestToolstack()
        defer { ts.destroy() }
        let xe = try Executables.require("xe")
        let env = ["XE_SOCKET": ts.configuration.socketPath]
        func run(_ args: String...) throws -> (Int32, String, String) { try Executables.run(xe, args, env: env) }
        let c = try ts.client()
        let sr = try ts.createSR(c)
        let srUUID = try c.call("SR.get_uuid", [.string(sr)]).stringValue!
        var many: [String] = []
        for _ in 0..<3 { many.append(try c.call("VDI.get_uuid", [.string(try ts.createVDI(c, sr: sr, name: "many", size: 4 << 20))]).stringValue!) }
        let keep = try c.call("VDI.get_uuid", [.string(try ts.createVDI(c, sr: sr, name: "keep", size: 4 << 20))]).stringValue!

        // Several matches need --multiple.
        var (status, out, err) = try run("vdi-update", "name-label=many")
        #expect(status == 1)
        #expect(err == "Multiple matches VDIs found. --multiple required to proceed\n")
        (status, _, err) = try run("vdi-update", "name-label=nothing-like-it", "--multiple")
        #expect(status == 1 && err == "No matching VDIs found\n")
        (status, _, err) = try run("vdi-update", "no-such-field=1", "--multiple")
        #expect(status == 1 && err.contains("no-such-field"))
        // A creating command prints one uuid per object.
        (status, out, err) = try run("vdi-clone", "name-label=many", "sr-uuid=\(srUUID)", "new-name-label=cloned", "--multiple")
        #expect(status == 0, "\(err)")
        let clones = out.split(separator: "\n").map(String.init)
        #expect(clones.count == 3 && Set(clones).count == 3)
        for u in clones { #expect(try c.call("VDI.get_name_label", [try c.call("VDI.get_by_uuid", [.string(u)])]) == "cloned") }
        (status, _, err) = try run("vdi-destroy", "name-label=cloned", "--multiple")
        #expect(status == 0, "\(err)")

        // One of them in use: the others are destroyed, the failure is reported, exit status 1.
        let dom0 = try c.call("VM.get_all").arrayValue![0]
        let busy = try c.call("VDI.get_by_uuid", [.string(many[1])])
        let vbd = try c.call("VBD.create", [.struct([
            XMLRPCMember("VM", dom0), XMLRPCMember("VDI", busy), XMLRPCMember("userdevice", "2"),
            XMLRPCMember("mode", "RW"), XMLRPCMember("type", "Disk"),
        ])])
        _ = try c.call("VBD.plug", [vbd])
        (status, out, err) = try run("vdi-destroy", "name-label=many", "--multiple")
        #expect(status == 1)
        #expect(err.hasPrefix("The operation failed on 1 of 3 objects:\nThis operation cannot be performed because this VDI is in use"), "\(err)")
        var left: [String] = []
        for r in try c.call("SR.get_VDIs", [.string(sr)]).arrayValue! where try c.call("VDI.get_managed", [r]) == .boolean(true) {
            left.append(try c.call("VDI.get_uuid", [r]).stringValue!)
        }
        #expect(Set(left) == [many[1], keep])
        _ = try c.call("VBD.unplug", [vbd])
        // --multiple with one match is the plain command.
        (status, _, err) = try run("vdi-destroy", "uuid=\(many[1])", "--multiple")
        #expect(status == 0, "\(err)")
    }
}
