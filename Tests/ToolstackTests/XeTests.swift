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
        #expect(inUseErr.hasPrefix("Error code: VDI_IN_USE\n"))
        _ = try ok("vbd-unplug", "uuid=\(vbd)")
        _ = try ok("vbd-destroy", "uuid=\(vbd)")
        // Errors: xapi's code and parameters, exit status 1.
        let (status, out, err) = try run("vdi-destroy", "uuid=no-such-uuid")
        #expect(status == 1)
        #expect(out.isEmpty)
        #expect(err == "Error code: UUID_INVALID\nError parameters: VDI, no-such-uuid\n")
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

    @Test func tcpNeedsTheRightPassword() throws {
        let ts = try TestToolstack(tcp: true)
        defer { ts.destroy() }
        let xe = try Executables.require("xe")
        let port = String(try #require(ts.server.boundPort))
        let (bad, _, badErr) = try Executables.run(xe, ["-s", "127.0.0.1", "-p", port, "-u", "root", "-pw", "nope", "pool-list"])
        #expect(bad == 1)
        #expect(badErr.hasPrefix("Error code: SESSION_AUTHENTICATION_FAILED"))
        let (good, out, _) = try Executables.run(xe, ["-s", "127.0.0.1", "-p", port, "-u", "root", "-pw", TestToolstack.password, "host-list", "--minimal"])
        #expect(good == 0)
        #expect(out.trimmingCharacters(in: .newlines) == (try ts.client().call("host.get_uuid", [.string(ts.service.hostRef)]).stringValue))
    }
}
