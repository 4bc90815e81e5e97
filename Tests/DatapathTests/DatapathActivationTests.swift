import Foundation
import SMCore
import Testing
import VHD

/// vdi_attach / vdi_activate / vdi_deactivate / vdi_detach / vdi_attach_from_config through the
/// SMAPI service, with real `swiftsm-datapath` processes, and snapshots of active VDIs.
@Suite struct DatapathActivationTests {
    @Test func attachResultIsThePythonSMs() throws {
        let s = try Scratch(); defer { s.remove() }
        let sr = "7d3a1c52-6e0b-4f8e-b6a9-2c41d0e95f13", vdi = "c2f4e8a1-93b7-4d25-8e6f-0a1b2c3d4e5f"
        let sm = try TestSM(s, run: "/run/swiftsm", sr: sr)
        _ = try VHDRepository(container: DirectoryContainer(directory: sm.srDirectory)).create(uuid: vdi, size: 8 << 20)
        let text = SMAPIResponse.text(sm.call(.vdiAttach, vdi: vdi, args: ["true"]))
        // responses.md §2.3, the ext/nfs example, with our socket in place of blktap's.
        let expected = """
        <?xml version='1.0'?>
        <methodResponse>
        <params>
        <param>
        <value><struct>
        <member>
        <name>params_nbd</name>
        <value><string>nbd:unix:/run/swiftsm/datapath/\(sr)/\(vdi)/nbd:exportname=\(vdi)</string></value>
        </member>
        <member>
        <name>o_direct</name>
        <value><boolean>0</boolean></value>
        </member>
        <member>
        <name>o_direct_reason</name>
        <value><string></string></value>
        </member>
        <member>
        <name>xenstore_data</name>
        <value><struct>
        <member>
        <name>vdi-uuid</name>
        <value><string>c2f4e8a1-93b7-4d25-8e6f-0a1b2c3d4e5f</string></value>
        </member>
        <member>
        <name>scsi/0x12/0x80</name>
        <value><string>AIAAEmMyZjRlOGExLTkzYjctNGQgIA==</string></value>
        </member>
        <member>
        <name>scsi/0x12/0x83</name>
        <value><string>AIMAMQIBAC1YRU5TUkMgIGMyZjRlOGExLTkzYjctNGQyNS04ZTZmLTBhMWIyYzNkNGU1ZiA=</string></value>
        </member>
        </struct></value>
        </member>
        </struct></value>
        </param>
        </params>
        </methodResponse>

        """
        #expect(text == expected)
        let ro = try SMAPIAttachResult(try #require(sm.call(.vdiAttach, vdi: vdi, args: ["false"]).value))
        #expect(ro.oDirect == true && ro.oDirectReason == "RO_WITH_NO_PARENT")
        #expect(sm.call(.vdiDetach, vdi: vdi).value?.isNil == true)
        #expect(sm.call(.vdiAttach, vdi: "00000000-0000-0000-0000-000000000000").faultValue?.code == 46)
    }

    @Test func activateServesDeactivateStopsRefcounted() throws {
        let s = try Scratch(); defer { s.remove() }
        let sm = try TestSM(s)
        let vdi = try sm.createVDI(mib: 16)
        let attach = try SMAPIAttachResult(try sm.ok(.vdiAttach, vdi: vdi, args: ["true"]))
        let params = try #require(attach.paramsNBD)
        try sm.ok(.vdiActivate, vdi: vdi, args: ["true"])
        let pid = try #require(sm.pid(vdi))
        #expect(DatapathLauncher.isRunning(pid, directory: sm.datapath(vdi)))
        // qemu takes params_nbd as it is.
        let src = try s.file("src.raw", pattern(2 << 20, seed: 51))
        try Command.check("qemu-img", ["convert", "-n", "-f", "raw", "-O", "raw", src, params])
        try Command.check("qemu-img", ["compare", "-f", "raw", "-F", "raw", src, params])
        try sm.ok(.vdiActivate, vdi: vdi, args: ["true"])
        #expect(sm.pid(vdi) == pid)
        #expect(try String(contentsOfFile: sm.datapath(vdi).refcountFile, encoding: .utf8) == "2 RW\n")
        #expect(sm.call(.vdiDelete, vdi: vdi).faultValue?.code == 24, "an active VDI is in use")
        try sm.ok(.vdiDeactivate, vdi: vdi)
        #expect(DatapathLauncher.isRunning(pid, directory: sm.datapath(vdi)))
        try sm.ok(.vdiDeactivate, vdi: vdi)
        #expect(DatapathLauncher.waitForExit(pid, directory: sm.datapath(vdi), timeout: 5))
        #expect(access(sm.datapath(vdi).nbdSocket, F_OK) != 0 && access(sm.datapath(vdi).pidFile, F_OK) != 0)
        try sm.ok(.vdiDetach, vdi: vdi)
        #expect(try s.read(sm.vhd(vdi), count: 2 << 20, at: 0) == Array(try Data(contentsOf: URL(fileURLWithPath: src))))
        #expect(s.problems(sm.vhd(vdi)).isEmpty)
        try sm.ok(.vdiDeactivate, vdi: vdi)        // nothing running: still fine
    }

    @Test func readOnlyActivationRefusesWritesAndARWOne() throws {
        let s = try Scratch(); defer { s.remove() }
        let sm = try TestSM(s)
        let vdi = try sm.createVDI(mib: 8)
        try sm.ok(.vdiActivate, vdi: vdi, args: ["false"])
        defer { _ = sm.call(.vdiDeactivate, vdi: vdi) }
        #expect(try Command.check("nbdinfo", [sm.uri(vdi)]).contains("is_read_only: true"))
        #expect(sm.call(.vdiActivate, vdi: vdi, args: ["true"]).faultValue?.code == 46)
    }

    @Test func attachFromConfigActivatesWithoutASession() throws {
        let s = try Scratch(); defer { s.remove() }
        let sm = try TestSM(s)
        let vdi = try sm.createVDI(mib: 8)
        let r = try SMAPIAttachResult(try sm.ok(.vdiAttachFromConfig, vdi: vdi))
        #expect(r.oDirect == true && r.oDirectReason == "LICENSE_RESTRICTION")
        #expect(r.xenstoreData?["storage-type"] == "ext" && r.xenstoreData?["vdi-uuid"] == vdi)
        #expect(r.paramsNBD == sm.datapath(vdi).paramsNBD(export: vdi))
        try Command.check("nbdinfo", [sm.uri(vdi)])
        let pid = try #require(sm.pid(vdi))
        try sm.ok(.vdiDetachFromConfig, vdi: vdi)
        #expect(DatapathLauncher.waitForExit(pid, directory: sm.datapath(vdi), timeout: 5))
    }

    @Test func crashedDatapathLeavesAConsistentVHDAndRestarts() throws {
        let s = try Scratch(); defer { s.remove() }
        let sm = try TestSM(s)
        let vdi = try sm.createVDI(mib: 64)
        try sm.ok(.vdiActivate, vdi: vdi, args: ["true"])
        let pid = try #require(sm.pid(vdi))
        let writer = try SlotWriter(uri: sm.uri(vdi), directory: s.path, slots: 4096)
        #expect(writer.waitFor(2000))
        kill(pid, SIGKILL)
        writer.finish()
        #expect(DatapathLauncher.waitForExit(pid, directory: sm.datapath(vdi), timeout: 5))
        #expect(s.problems(sm.vhd(vdi)).isEmpty, "the engine's write ordering keeps the VHD consistent")
        // Every acknowledged write survived; at most the one in flight went further.
        let acks = writer.acks()
        let last = acks.map(\.i).max() ?? 0
        var lastAcked: [Int: UInt64] = [:]
        for a in acks { lastAcked[a.slot] = max(lastAcked[a.slot] ?? 0, a.i) }
        let disk = try s.read(sm.vhd(vdi), count: 4096 * 4096, at: 0)
        for slot in 0..<4096 {
            let v = SlotWriter.record(disk[(slot * 4096)..<(slot * 4096 + 4096)], slot: slot)
            let want = lastAcked[slot] ?? 0
            #expect(v == want || v == last + 1, "slot \(slot): \(String(describing: v)), acknowledged \(want)")
        }
        // The stale pid file does not stop a new activation.
        try sm.ok(.vdiActivate, vdi: vdi, args: ["true"])
        let again = try #require(sm.pid(vdi))
        #expect(again != pid && DatapathLauncher.isRunning(again, directory: sm.datapath(vdi)))
        try Command.check("nbdinfo", [sm.uri(vdi)])
        try sm.ok(.vdiDeactivate, vdi: vdi)
        #expect(DatapathLauncher.waitForExit(again, directory: sm.datapath(vdi), timeout: 5))
    }

    @Test func snapshotOfAnActiveVDIWhileAClientWrites() throws {
        let s = try Scratch(); defer { s.remove() }
        let sm = try TestSM(s)
        let vdi = try sm.createVDI(mib: 16)
        try sm.ok(.vdiActivate, vdi: vdi, args: ["true"])
        let slots = 2048
        let writer = try SlotWriter(uri: sm.uri(vdi), directory: s.path, slots: slots)
        #expect(writer.waitFor(3000))
        let before = monotonicNanoseconds()
        let snap = try #require(try sm.ok(.vdiSnapshot, vdi: vdi, driverParams: [:]).structMembers?.first { $0.name == "uuid" }?.value.stringValue)
        let after = monotonicNanoseconds()
        let countAtSnapshot = writer.acks().count
        #expect(writer.waitFor(countAtSnapshot + 2000), "writes go on after the snapshot")
        writer.finish()
        let acks = writer.acks()
        // Another client sees every acknowledged write in the live disk.
        let live = s.path + "/live.raw"
        try Command.check("nbdcopy", [sm.uri(vdi), live])
        let liveBytes = Array(try Data(contentsOf: URL(fileURLWithPath: live)))
        let stats = try DatapathControlClient(socketPath: sm.datapath(vdi).controlSocket).stats()
        #expect(stats.pauses == 1 && !stats.paused && stats.leaf == StorePath.basename(sm.vhd(vdi)) && stats.errors == 0)
        try sm.ok(.vdiDeactivate, vdi: vdi)
        var lastAcked = [UInt64](repeating: 0, count: slots)
        var ackedBeforePause = [UInt64](repeating: 0, count: slots)
        var issued: [UInt64: UInt64] = [:]
        for a in acks {
            lastAcked[a.slot] = max(lastAcked[a.slot], a.i)
            if a.acked < before { ackedBeforePause[a.slot] = max(ackedBeforePause[a.slot], a.i) }
            issued[a.i] = a.issued
        }
        let leafBytes = try s.read(sm.vhd(vdi), count: slots * 4096, at: 0)
        let snapBytes = try s.read(sm.vhd(snap), count: slots * 4096, at: 0)
        var checked = 0, inSnapshot = 0, newerInLeaf = 0
        for slot in 0..<slots {
            let r = (slot * 4096)..<(slot * 4096 + 4096)
            // Live disk, through the chain file by file and through nbdcopy: the last acknowledged write.
            #expect(SlotWriter.record(leafBytes[r], slot: slot) == lastAcked[slot], "live slot \(slot)")
            #expect(SlotWriter.record(liveBytes[r], slot: slot) == lastAcked[slot], "nbdcopy slot \(slot)")
            // Snapshot: at least what was acknowledged before the pause, nothing issued after it ended.
            let v = try #require(SlotWriter.record(snapBytes[r], slot: slot), "torn record in snapshot slot \(slot)")
            #expect(v >= ackedBeforePause[slot], "snapshot slot \(slot) lost an acknowledged write")
            if v > 0 { #expect((issued[v] ?? 0) < after, "snapshot slot \(slot) holds a write issued after the snapshot") }
            checked += 1
            if v > 0 { inSnapshot += 1 }
            if lastAcked[slot] > v { newerInLeaf += 1 }
        }
        #expect(checked == slots)
        #expect(inSnapshot == slots && newerInLeaf > slots / 2, "the snapshot is full and later writes went to the new leaf")
        for v in [vdi, snap] { #expect(s.problems(sm.vhd(v)).isEmpty) }
    }
}
