import FakeXapi
import Foundation
import SMCore
import Testing
import VHD

/// Hostile and broken requests through the executable: the driver must always exit 0 with one
/// parsable fault on stdout (143 `BadRequest` for what cannot be parsed, `responses.md` §3), never
/// hang, never touch anything outside the SR, and never change the SR when it refuses a call.
@Suite struct BadInputTests {
    /// A request and the fault it must get.
    struct Case: Sendable, CustomTestStringConvertible {
        var name: String
        var code: Int32
        /// Builds the arguments after `--driver ext` for an SR.
        var arguments: @Sendable (TestSR) throws -> [String]
        var testDescription: String { "\(name) → \(code)" }
    }

    /// `command`'s document for `sr`, edited.
    static func doc(_ sr: TestSR, _ command: String, vdi: String? = nil, _ edit: (inout RequestDocument) -> Void = { _ in }) throws -> [String] {
        var d = try sr.document(command, vdi: vdi ?? UUID().uuidString.lowercased())
        edit(&d)
        return [d.text]
    }

    static let scanText: @Sendable (TestSR) throws -> String = { try $0.document("sr_scan").text }

    static let malformed: [Case] = [
        Case(name: "no argument", code: 143) { _ in [] },
        Case(name: "two arguments", code: 143) { sr in let t = try scanText(sr); return [t, t] },
        Case(name: "empty document", code: 143) { _ in [""] },
        Case(name: "not XML", code: 143) { _ in ["sr_scan please"] },
        Case(name: "truncated document", code: 143) { sr in let t = try scanText(sr); return [String(t.prefix(t.count / 2))] },
        Case(name: "control character", code: 143) { sr in [try scanText(sr).replacingOccurrences(of: "<methodName>sr_scan", with: "<methodName>sr_scan\u{1}")] },
        Case(name: "no params", code: 143) { _ in ["<methodCall><methodName>sr_scan</methodName><params/></methodCall>"] },
        Case(name: "param not a struct", code: 143) { _ in ["<methodCall><methodName>sr_scan</methodName><params><param><value>x</value></param></params></methodCall>"] },
        Case(name: "two params", code: 143) { sr in
            var call = try sr.document("sr_scan").call
            call.params += call.params
            return [XMLRPCEncoder(style: .xapi).encode(call)]
        },
        Case(name: "args is a struct", code: 143) { sr in try doc(sr, "vdi_resize") { $0[member: "args"] = .struct([]) } },
        Case(name: "args is a string", code: 143) { sr in try doc(sr, "vdi_resize") { $0[member: "args"] = .string("21474836480") } },
        Case(name: "args holds an int", code: 143) { sr in try doc(sr, "vdi_resize") { $0[member: "args"] = .array([.int(7)]) } },
        Case(name: "device_config is a string", code: 143) { sr in try doc(sr, "sr_scan") { $0[member: "device_config"] = .string("/dev/sda") } },
        Case(name: "device_config is an array", code: 143) { sr in try doc(sr, "sr_scan") { $0[member: "device_config"] = .array([]) } },
        Case(name: "device_config holds an int", code: 143) { sr in
            try doc(sr, "sr_scan") { $0.editDeviceConfig { $0.append(XMLRPCMember("port", .int(3260))) } }
        },
        Case(name: "no device_config", code: 143) { sr in try doc(sr, "sr_create") { $0[member: "device_config"] = nil } },
        Case(name: "session_ref is an int", code: 143) { sr in try doc(sr, "sr_scan") { $0[member: "session_ref"] = .int(1) } },
        Case(name: "unknown command", code: 143) { sr in
            var d = try sr.document("sr_scan")
            d[member: "command"] = .string("sr_explode")
            var call = d.call
            call.methodName = "sr_explode"
            return [XMLRPCEncoder(style: .xapi).encode(call)]
        },
        Case(name: "sr_uuid with a path", code: 143) { sr in try doc(sr, "sr_create") { $0[member: "sr_uuid"] = .string("../../tmp/evil") } },
        Case(name: "sr_create without device or path", code: 90) { sr in
            try doc(sr, "sr_create") { $0.editDeviceConfig { $0.removeAll { $0.name != "SRmaster" } } }
        },
        Case(name: "sr_probe without device or path", code: 90) { sr in
            try doc(sr, "sr_probe") { $0.editDeviceConfig { $0.removeAll { $0.name != "SRmaster" } } }
        },
        Case(name: "vdi_create without device or path", code: 90) { sr in
            try doc(sr, "vdi_create") { $0.editDeviceConfig { $0.removeAll { $0.name != "SRmaster" } } }
        },
        Case(name: "sr_scan with an empty device", code: 90) { sr in
            try doc(sr, "sr_scan") { $0.editDeviceConfig { $0 = [XMLRPCMember("SRmaster", "true"), XMLRPCMember("device", "")] } }
        },
    ]

    /// Every malformed request gets its fault from a fresh run directory, and nothing is created.
    @Test(arguments: malformed)
    func malformedRequest(_ c: Case) throws {
        let sr = try TestSR(mode: .path)
        defer { sr.cleanup() }
        let result = try sr.run(arguments: try c.arguments(sr), timeout: 20)
        Self.expectOneFault(result, code: c.code)
        #expect(!FileManager.default.fileExists(atPath: sr.pathDirectory), "nothing created for a refused call")
        #expect(sr.fake.calls.isEmpty || c.code != 143, "a request that cannot be parsed makes no callback")
    }

    /// Exit 0, one Python-style fault document on stdout and nothing that looks like a crash.
    static func expectOneFault(_ r: SmdriverResult, code: Int32, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(r.exitStatus == 0 && r.signal == nil && !r.timedOut, "\(r)", sourceLocation: sourceLocation)
        #expect(r.stdout.hasPrefix("<?xml version='1.0'?>\n<methodResponse>\n"), "\(r)", sourceLocation: sourceLocation)
        #expect(r.stdout.components(separatedBy: "<methodResponse>").count == 2, "exactly one document", sourceLocation: sourceLocation)
        for crash in ["Fatal error", "Stack dump", "Segmentation", "Illegal instruction", "Current stack trace"] {
            #expect(!r.stdout.contains(crash) && !r.stderr.contains(crash), "crash output: \(r)", sourceLocation: sourceLocation)
        }
        let fault = (try? r.response())?.faultValue
        #expect(fault?.code == code, "expected fault \(code): \(r)", sourceLocation: sourceLocation)
        if let fault, let entry = SMErrorCatalogue.entry(code: fault.code) {
            #expect(fault.string.hasPrefix(entry.message), "faultString starts with the table message", sourceLocation: sourceLocation)
        }
    }

    // MARK: - Hostile XML

    static let hostile: [(name: String, text: String)] = {
        var laughs = "<?xml version=\"1.0\"?><!DOCTYPE methodCall [<!ENTITY l0 \"lol\">"
        for i in 1...9 { laughs += "<!ENTITY l\(i) \"" + String(repeating: "&l\(i - 1);", count: 10) + "\">" }
        laughs += "]><methodCall><methodName>sr_scan</methodName><params><param><value><struct><member><name>device_config</name>"
            + "<value><struct><member><name>path</name><value>&l9;</value></member></struct></value></member></struct></value>"
            + "</param></params></methodCall>"
        let external = "<?xml version=\"1.0\"?><!DOCTYPE methodCall [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>"
            + "<methodCall><methodName>sr_probe</methodName><params><param><value><struct><member><name>device_config</name>"
            + "<value><struct><member><name>path</name><value>&xxe;</value></member></struct></value></member></struct></value>"
            + "</param></params></methodCall>"
        let externalDTD = "<?xml version=\"1.0\"?><!DOCTYPE methodCall SYSTEM \"http://127.0.0.1:9/evil.dtd\">"
            + "<methodCall><methodName>sr_probe</methodName><params/></methodCall>"
        let parameterEntity = "<?xml version=\"1.0\"?><!DOCTYPE m [<!ENTITY % p SYSTEM \"file:///etc/shadow\"> %p;]>"
            + "<methodCall><methodName>sr_probe</methodName><params/></methodCall>"
        let deep = "<methodCall><methodName>sr_scan</methodName><params><param>"
            + String(repeating: "<value><array><data>", count: 2000) + String(repeating: "</data></array></value>", count: 2000)
            + "</param></params></methodCall>"
        let quadratic = "<?xml version=\"1.0\"?><!DOCTYPE m [<!ENTITY a \"" + String(repeating: "x", count: 50_000) + "\">]>"
            + "<methodCall><methodName>sr_scan</methodName><params><param><value>" + String(repeating: "&a;", count: 10_000)
            + "</value></param></params></methodCall>"
        return [("billion laughs", laughs), ("external entity", external), ("external DTD", externalDTD),
                ("parameter entity", parameterEntity), ("2000 levels of nesting", deep), ("quadratic blowup", quadratic)]
    }()

    @Test(arguments: hostile.map(\.name))
    func hostileXMLIsRefusedQuickly(_ name: String) throws {
        let text = try #require(Self.hostile.first { $0.name == name }?.text)
        #expect(text.utf8.count < 128 << 10, "fits in one argv string")
        let sr = try TestSR(mode: .path)
        defer { sr.cleanup() }
        let result = try sr.run(arguments: [text], timeout: 10)
        Self.expectOneFault(result, code: 143)
        #expect(result.seconds < 3, "refused in \(result.seconds) s")
        #expect(!result.stdout.contains("root:") && !result.stderr.contains("root:"), "no file content leaks")
        let log = (try? String(contentsOfFile: sr.runDir + "/SMlog", encoding: .utf8)) ?? ""
        #expect(!log.contains("root:x:"), "no file content in SMlog")
        #expect(log.utf8.count < 64 << 10, "the log does not hold an expansion")
    }

    // MARK: - Path traversal

    /// VDI names that are paths are refused by every VDI command, and nothing changes anywhere.
    @Test func pathTraversalIsRefusedAndChangesNothing() throws {
        // The SR lives two levels down so that `../../etc/passwd` stays inside the test's root.
        let sr = try TestSR(mode: .path, pathBelowRoot: "a/b/sr")
        defer { sr.cleanup() }
        try sr.createAndAttach()
        let v = try sr.createVDI(size: 8 << 20)
        try sr.writePattern(v, seed: 5)
        let victims = sr.root + "/a/b/etc"
        try FileManager.default.createDirectory(atPath: victims, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: sr.root + "/a/etc", withIntermediateDirectories: true)
        try Data("root:x:0:0\n".utf8).write(to: URL(fileURLWithPath: sr.root + "/a/etc/passwd"))
        try Create.dynamic(at: sr.root + "/a/etc/passwd.vhd", size: 8 << 20, provider: sr.provider)
        try Create.dynamic(at: victims + "/passwd.vhd", size: 8 << 20, provider: sr.provider)
        let composeVictim = try #require(sr.fake.vdi(uuid: v))
        let before = try Self.tree(sr.root, excluding: sr.runDir)
        let recordsBefore = sr.fake.vdis
        let hash = try sr.contentHash(v)

        // (vdi_uuid, vdi_location): paths as both, and a path as the location of a real uuid.
        let pairs = [("../../etc/passwd", "../../etc/passwd"), ("a/b", "a/b"), ("/etc/passwd", "/etc/passwd"), ("", ""),
                     (v, "../../etc/passwd"), (v + "/..", v + "/..")]
        let commands = ["vdi_delete", "vdi_snapshot", "vdi_clone", "vdi_resize", "vdi_update", "vdi_generate_config",
                        "vdi_epoch_begin", "vdi_compose", "vdi_attach", "vdi_activate", "vdi_deactivate", "vdi_data_destroy"]
        let calls = commands.flatMap { c in pairs.map { (c, $0.0, $0.1) } }
        let results = Results(count: calls.count)
        DispatchQueue.concurrentPerform(iterations: calls.count) { i in
            let (command, uuid, location) = calls[i]
            results.set(i, Result {
                try sr.call(command, vdi: v) { d in
                    d[member: "vdi_uuid"] = .string(uuid)
                    d[member: "vdi_location"] = .string(location)
                    if command == "vdi_epoch_begin" { d[member: "vdi_on_boot"] = .string("reset") }
                }
            })
        }
        var refused = 0
        for (i, (command, uuid, location)) in calls.enumerated() {
            let fault = sr.fault(try results.get(i).get())
            #expect(fault != nil, "\(command) \(uuid) \(location) was accepted")
            if fault != nil { refused += 1 }
        }
        let names = ["../../etc/passwd", "a/b", ""]
        // vdi_create and vdi_introduce with a path as the new VDI's uuid.
        for name in names {
            let created = try sr.call("vdi_create") { $0[member: "vdi_uuid"] = .string(name) }
            #expect(sr.fault(created) != nil, "vdi_create named \(name)")
            let introduced = try sr.call("vdi_introduce", vdi: name)
            #expect(sr.fault(introduced) != nil, "vdi_introduce of \(name)")
        }
        // xapi names a compose parent whose uuid is a path.
        var evil = composeVictim
        evil.uuid = "../../etc/passwd"
        evil.ref = E2EFixtures.composeParentRef
        sr.fake.updateVDI(evil)
        #expect(sr.fault(try sr.call("vdi_compose", vdi: v)) != nil, "compose onto ../../etc/passwd")
        sr.fake.removeVDI(ref: E2EFixtures.composeParentRef)

        #expect(refused == calls.count)
        let after = try Self.tree(sr.root, excluding: sr.runDir)
        #expect(after == before, "changed: \(Set(after.map { "\($0)" }).symmetricDifference(Set(before.map { "\($0)" })))")
        #expect(sr.fake.vdis == recordsBefore, "no record introduced, forgotten or changed")
        #expect(try sr.contentHash(v) == hash)
        #expect(sr.treeProblems().isEmpty && sr.strayFiles().isEmpty)
    }

    /// Results filled in by concurrent calls.
    final class Results: @unchecked Sendable {
        private let lock = NSLock()
        private var values: [Result<SmdriverResult, any Error>?]
        init(count: Int) { values = Array(repeating: nil, count: count) }
        func set(_ i: Int, _ r: Result<SmdriverResult, any Error>) { lock.withLock { values[i] = r } }
        func get(_ i: Int) -> Result<SmdriverResult, any Error> { lock.withLock { values[i]! } }
    }

    /// Path, size, modification time and (for small files) contents of every file under `root`.
    static func tree(_ root: String, excluding: String) throws -> [String: String] {
        var out: [String: String] = [:]
        let fm = FileManager.default
        guard let e = fm.enumerator(atPath: root) else { return [:] }
        for case let relative as String in e {
            let path = root + "/" + relative
            if path.hasPrefix(excluding) { continue }
            var st = stat()
            guard lstat(path, &st) == 0 else { continue }
            var entry = "mode \(st.st_mode) size \(st.st_size) mtime \(st.st_mtim.tv_sec).\(st.st_mtim.tv_nsec)"
            if (st.st_mode & S_IFMT) == S_IFREG, let data = fm.contents(atPath: path) {
                var h: UInt64 = 0xcbf2_9ce4_8422_2325
                for b in data { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
                entry += " fnv \(h)"
            }
            out[relative] = entry
        }
        return out
    }

    // MARK: - XenAPI failures

    /// A callback that xapi refuses (a session it does not know) is the command's own fault, as
    /// the Python SM reports a `XenAPI.Failure` (§3): sr_update 202, sr_scan 40, vdi_create 78.
    @Test(arguments: [("sr_update", Int32(202)), ("sr_scan", 40), ("vdi_create", 78)])
    func unknownSessionIsTheCommandsFault(_ command: String, _ code: Int32) throws {
        let sr = try TestSR(mode: .path)
        defer { sr.cleanup() }
        try sr.createAndAttach()
        let result = try sr.call(command) { $0[member: "session_ref"] = .string("OpaqueRef:00000000-0000-0000-0000-000000000000") }
        Self.expectOneFault(result, code: code)
        #expect(sr.fake.calls.allSatisfy { !$0.isEmpty })
    }

    /// xapi unreachable: 154 `APIProtocolError`, promptly.
    @Test func unreachableXapiIs154() throws {
        let sr = try TestSR(mode: .path)
        defer { sr.cleanup() }
        try sr.createAndAttach()
        var env = sr.environment
        env["SWIFTSM_XAPI_URL"] = sr.root + "/no-such-socket"
        let result = try Smdriver.run([try sr.document("sr_update").text], environment: env, timeout: 40)
        Self.expectOneFault(result, code: 154)
        #expect(result.seconds < 5)
    }

    /// The log never shows a session reference (it grants xapi access while the call runs).
    @Test func smlogHoldsNoSessionRefs() throws {
        let sr = try TestSR(mode: .path)
        defer { sr.cleanup() }
        try sr.createAndAttach()
        let v = try sr.createVDI(size: 8 << 20)
        try sr.value(try sr.call("vdi_snapshot", vdi: v))
        _ = try sr.call("vdi_resize", vdi: v) { $0.setArgs(["1"]) }   // a failure is logged too
        let log = try String(contentsOfFile: sr.runDir + "/SMlog", encoding: .utf8)
        #expect(log.contains("vdi_snapshot"))
        for session in try E2EFixtures.sessionRefs() {
            #expect(!log.contains(String(session.dropFirst("OpaqueRef:".count))), "SMlog shows \(session)")
        }
    }
}
