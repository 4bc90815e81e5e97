import FakeXapi
import Foundation
import SMCore
import Testing

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
}
