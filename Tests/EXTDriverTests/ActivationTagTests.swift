import FakeXapi
import Foundation
import SMCore
import Testing
import VHD

/// blktap's sm_config keys around the data path, through the executable against the fake xapi:
/// `host_<ref>` while active, `paused` while a snapshot holds the datapath, an activation that
/// waits while another actor has the VDI paused, and `sr_attach` clearing what a crash left.
@Suite struct ActivationTagTests {
    func hostKey(_ sr: TestSR, _ v: String) throws -> String {
        "host_" + (try #require(try sr.document("vdi_activate", vdi: v).string("host_ref")))
    }

    @Test func activationWaitsWhilePausedAndSnapshotsTagPaused() throws {
        let sr = try TestSR(mode: .path)
        defer { sr.cleanup() }
        try sr.createAndAttach()
        let v = try sr.createVDI(size: 8 << 20)
        var record = try #require(sr.fake.vdi(uuid: v))
        record.smConfig["paused"] = "true"
        sr.fake.updateVDI(record)
        let box = ResultBox()
        Thread.detachNewThread { box.set(try? sr.call("vdi_activate", vdi: v)) }
        usleep(1_000_000)
        #expect(sr.datapathPIDs().isEmpty, "no activation while another actor has the VDI paused")
        record = try #require(sr.fake.vdi(uuid: v))
        record.smConfig["paused"] = nil
        sr.fake.updateVDI(record)
        let activated = try #require(box.wait(timeout: 30))
        try sr.value(activated)
        #expect(sr.datapathPIDs().count == 1)
        #expect(sr.fake.vdi(uuid: v)?.smConfig[try hostKey(sr, v)] == "RW")
        // A snapshot of the active VDI marks it paused while it holds the datapath.
        sr.fake.clearCalls()
        try sr.value(try sr.call("vdi_snapshot", vdi: v))
        let added = sr.fake.arguments(of: "VDI.add_to_sm_config").compactMap { $0.count > 1 ? $0[1].stringValue : nil }
        let removed = sr.fake.arguments(of: "VDI.remove_from_sm_config").compactMap { $0.count > 1 ? $0[1].stringValue : nil }
        #expect(added.contains("paused") && removed.contains("paused"), "added \(added), removed \(removed)")
        #expect(sr.fake.vdi(uuid: v)?.smConfig["paused"] == nil)
        try sr.value(try sr.call("vdi_deactivate", vdi: v))
        #expect(sr.fake.vdi(uuid: v)?.smConfig[try hostKey(sr, v)] == nil)
    }

    @Test func srAttachClearsWhatACrashLeft() throws {
        let sr = try TestSR(mode: .path)
        defer { sr.cleanup() }
        try sr.createAndAttach()
        let v = try sr.createVDI(size: 8 << 20)
        var record = try #require(sr.fake.vdi(uuid: v))
        record.smConfig[try hostKey(sr, v)] = "RW"
        record.smConfig["paused"] = "true"
        record.smConfig["note"] = "kept"
        sr.fake.updateVDI(record)
        try sr.value(try sr.call("sr_attach"))
        let sm = sr.fake.vdi(uuid: v)?.smConfig ?? [:]
        #expect(sm[try hostKey(sr, v)] == nil && sm["paused"] == nil, "\(sm)")
        #expect(sm["note"] == "kept", "other keys stay")
    }

    /// Two hosts on one shared (NFS) SR, each with its own run directory and host ref: a change
    /// of a VDI's chain on the master marks it `paused` even when no data path runs on the
    /// master, waits for an activation under way elsewhere, and pauses the data path of a VDI
    /// active on the other host through that host's `tapdisk-pause` plugin (refusing with 46
    /// when the plugin fails).
    @Test func twoHostsOnASharedSRSeeEachOthersMarks() throws {
        let sr = try TestSR(mode: .nfs)
        defer { sr.cleanup() }
        // Short: the datapath's sockets live below it.
        let hostB = "/tmp/hb-" + UUID().uuidString.prefix(8).lowercased(), refB = "OpaqueRef:0b0b0b0b-0b0b-4b0b-8b0b-0b0b0b0b0b0b"
        try FileManager.default.createDirectory(atPath: hostB, withIntermediateDirectories: true)
        defer {
            for pid in TestSR.datapathPIDs(runDir: hostB) { kill(pid, SIGKILL) }
            try? FileManager.default.removeItem(atPath: hostB)
        }
        func onB(_ command: String, vdi: String? = nil, args: [String]? = nil) throws -> SmdriverResult {
            var doc = try sr.document(command, vdi: vdi)
            doc[member: "host_ref"] = .string(refB)
            doc.editDeviceConfig { m in m.removeAll { $0.name == "SRmaster" }; m.append(XMLRPCMember("SRmaster", "false")) }
            if let args { doc.setArgs(args) }
            var env = sr.environment
            env["SWIFTSM_RUN_DIR"] = hostB
            return try Smdriver.run([doc.text], driver: sr.driver, environment: env)
        }
        try sr.createAndAttach()
        try sr.value(try onB("sr_attach"))
        let v = try sr.createVDI(size: 16 << 20)

        // Not active anywhere: the snapshot still marks the VDI paused for its length.
        sr.fake.clearCalls()
        try sr.value(try sr.call("vdi_snapshot", vdi: v))
        let added = sr.fake.arguments(of: "VDI.add_to_sm_config").compactMap { $0.count > 1 ? $0[1].stringValue : nil }
        let removed = sr.fake.arguments(of: "VDI.remove_from_sm_config").compactMap { $0.count > 1 ? $0[1].stringValue : nil }
        #expect(added.contains("paused") && removed.contains("paused"), "added \(added), removed \(removed)")

        // An activation under way on B (`activating`) is waited for by the master's snapshot.
        var record = try #require(sr.fake.vdi(uuid: v))
        record.smConfig["activating"] = "True"
        sr.fake.updateVDI(record)
        let box = ResultBox()
        let started = Date()
        Thread.detachNewThread { box.set(try? sr.call("vdi_snapshot", vdi: v)) }
        usleep(1_500_000)
        record = try #require(sr.fake.vdi(uuid: v))
        #expect(record.smConfig["paused"] == "true", "the snapshot has marked the VDI and waits")
        record.smConfig["activating"] = nil
        sr.fake.updateVDI(record)
        try sr.value(try #require(box.wait(timeout: 60)))
        #expect(Date().timeIntervalSince(started) >= 1.5, "the snapshot waited for the activation")

        // Active on B: the master's snapshot pauses B's data path through the tapdisk-pause
        // plugin (xapi's host.call_plugin, run here by the fake as B's smdriver) and unpauses
        // it onto the new leaf. B's guest keeps its disk; the snapshot holds what B had written.
        sr.fake.setPluginRunner(sr.hostPlugins(on: [refB: hostB]))
        try sr.value(try onB("vdi_attach", vdi: v, args: ["true"]))
        try sr.value(try onB("vdi_activate", vdi: v, args: ["true"]))
        #expect(TestSR.datapathPIDs(runDir: hostB).count == 1 && sr.datapathPIDs().isEmpty)
        #expect(sr.fake.vdi(uuid: v)?.smConfig["host_" + refB] == "RW")
        let uriB = "nbd+unix:///\(v)?socket=\(hostB)/datapath/\(sr.srUUID)/\(v)/nbd"
        func qemuIO(_ command: String) throws -> String { try Shell.run("/usr/bin/qemu-io", ["-f", "raw", "-c", command, uriB]) }
        _ = try qemuIO("write -P 0xa1 0 1M")
        sr.fake.clearCalls()
        let snapshot = try sr.vdiInfo(try sr.value(try sr.call("vdi_snapshot", vdi: v)))
        let plugins = sr.fake.arguments(of: "host.call_plugin").compactMap { $0.count > 2 ? $0[2].stringValue : nil }
        #expect(plugins == ["pause", "unpause"], "B paused and unpaused: \(plugins)")
        #expect(sr.fake.vdi(uuid: v)?.smConfig["paused"] == nil)
        #expect(TestSR.datapathPIDs(runDir: hostB).count == 1, "B's data path lives on")
        #expect(!(try qemuIO("read -P 0xa1 0 1M")).contains("fail"), "B reads what it wrote, through the new chain")
        _ = try qemuIO("write -P 0xb2 0 1M")
        #expect(!(try qemuIO("read -P 0xb2 0 1M")).contains("fail"))
        let snap = try VHDChain(path: sr.path(snapshot), provider: sr.provider)
        #expect(try snap.read(count: 1 << 20, at: 0) == [UInt8](repeating: 0xa1, count: 1 << 20), "the snapshot holds B's write")

        // A host whose plugin fails: the snapshot is refused (46) and nothing changes.
        sr.fake.setPluginRunner { _, _, function, _ in .failure(FakeXapiPluginError(["XENAPI_PLUGIN_FAILURE", function, "OSError", "gone"])) }
        let before = try sr.disk()
        let refused = sr.fault(try sr.call("vdi_snapshot", vdi: v))
        #expect(refused?.code == 46 && refused?.string.contains(refB) == true, "\(String(describing: refused))")
        #expect(try sr.disk() == before, "nothing changed")
        #expect(sr.fake.vdi(uuid: v)?.smConfig["paused"] == nil, "the mark goes with the refusal")

        // Deactivated on B: B's writes are in the live VDI.
        try sr.value(try onB("vdi_deactivate", vdi: v))
        #expect(TestSR.datapathPIDs(runDir: hostB).isEmpty)
        let live = try VHDChain(path: sr.path(v), provider: sr.provider)
        #expect(try live.read(count: 1 << 20, at: 0) == [UInt8](repeating: 0xb2, count: 1 << 20))
        try sr.value(try sr.call("vdi_snapshot", vdi: v))
        #expect(sr.treeProblems().isEmpty)
    }

    /// The `tapdisk-pause` plugin as xapi runs it (`smdriver` under that name, the methodCall as
    /// its argument): bad input is xapi's failure envelope with a clear description, and a VDI
    /// with no data path on the host is paused and unpaused as a no-op ("True").
    @Test func tapdiskPausePluginAnswersInXapisEnvelope() throws {
        let run = "/tmp/tp-" + UUID().uuidString.prefix(8).lowercased()
        try FileManager.default.createDirectory(atPath: run, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: run) }
        func plugin(_ argument: String) throws -> (status: String?, value: String?, error: [String]) {
            let r = try Smdriver.run([argument], driver: "tapdisk-pause", environment: ["SWIFTSM_RUN_DIR": run])
            #expect(r.exitStatus == 0, "\(r)")
            let members = try #require(try XMLRPCDecoder().decodeMethodResponse(r.stdout).value?.structMembers, "\(r.stdout)")
            let fields = Dictionary(members.map { ($0.name, $0.value) }, uniquingKeysWith: { a, _ in a })
            var error: [String] = []
            if case let .array(items)? = fields["ErrorDescription"] { error = items.compactMap(\.stringValue) }
            return (fields["Status"]?.stringValue, fields["Value"]?.stringValue, error)
        }
        func call(_ function: String, _ args: [String: String]) -> String {
            XMLRPCEncoder().encode(XMLRPCMethodCall(methodName: function, params: [
                .string("OpaqueRef:session"), .struct(args.sorted { $0.key < $1.key }.map { XMLRPCMember($0.key, .string($0.value)) })]))
        }
        let sr = UUID().uuidString.lowercased(), vdi = UUID().uuidString.lowercased()
        for function in ["pause", "unpause", "refresh"] {
            let ok = try plugin(call(function, ["sr_uuid": sr, "vdi_uuid": vdi, "failfast": "False"]))
            #expect(ok.status == "Success" && ok.value == "True", "\(function): \(ok)")
        }
        let unknown = try plugin(call("explode", ["sr_uuid": sr, "vdi_uuid": vdi]))
        #expect(unknown.status == "Failure" && unknown.error == ["UNKNOWN_XENAPI_PLUGIN_FUNCTION", "explode"])
        let badUUID = try plugin(call("pause", ["sr_uuid": "../../etc", "vdi_uuid": vdi]))
        #expect(badUUID.status == "Failure" && badUUID.error.first == "XENAPI_PLUGIN_FAILURE" && badUUID.error.last?.contains("uuid") == true)
        let noArgs = try plugin(XMLRPCEncoder().encode(XMLRPCMethodCall(methodName: "pause", params: [.string("s")])))
        #expect(noArgs.status == "Failure" && noArgs.error.first == "XENAPI_PLUGIN_FAILURE")
        let garbage = try plugin("<methodCall><methodName>pause</methodName><params><param>")
        #expect(garbage.status == "Failure" && garbage.error.first == "XENAPI_PLUGIN_FAILURE", "\(garbage)")
        #expect(!FileManager.default.fileExists(atPath: run + "/datapath/" + sr), "nothing made for a VDI that is not active here")
    }

}
