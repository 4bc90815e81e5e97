import FakeXapi
import Foundation
import SMCore
import Testing
import VHD

/// The garbage collector through `smdriver gc`, against a fake xapi it logs in to: every kind of
/// work done with contents and records intact; abort honoured at a safe point while SR
/// operations carry on; background collectors started by SMAPI calls; clear refusals.
@Suite struct GCTests {
    @Test func collectsGarbageCoalescesAndLeafCoalesces() throws {
        let sr = try TestSR(mode: .path)
        defer { sr.cleanup() }
        let scenario = try GCScenario(sr)
        sr.fake.clearCalls()
        let run = try scenario.collect()
        #expect(run.exitStatus == 0, "\(run)")
        #expect(run.stdout.contains("removed 1, coalesced 1, leaf-coalesced 1"), "\(run.stdout)")
        let problems = try scenario.finalProblems()
        #expect(problems.isEmpty, "\(problems)")
        // The collector logged in itself and told xapi what went away: the garbage, the merged
        // node, the base the leaf was merged into (whose image now carries the leaf's uuid).
        #expect(sr.fake.requests.contains { $0.method == "session.login_with_password" })
        #expect(sr.fake.requests.filter { $0.method == "VDI.db_forget" }.count == 3)
        // Nothing left to do: a second run changes nothing.
        let again = try scenario.collect()
        #expect(again.stdout.contains("removed 0, coalesced 0, leaf-coalesced 0"), "\(again.stdout)")
        #expect(try scenario.finalProblems().isEmpty)
        let status = try sr.run(arguments: ["gc", "--sr", sr.srUUID, "--status"])
        #expect(status.stdout.contains("idle:") && status.stdout.contains("removed 0"), "\(status.stdout)")
    }

    /// On an LVM-over-iSCSI SR the collector process logs in to the LUN itself, coalesces into
    /// deflated read-only parents (inflated first, settled after) and removes LVs.
    @Test func onLVMoISCSISR() throws {
        if let why = ISCSITestTarget.unavailableReason { try Test.cancel(Comment(rawValue: why)) }
        let sr = try TestSR(mode: .lvmoiscsi)
        defer { sr.cleanup() }
        let scenario = try GCScenario(sr)
        let run = try scenario.collect()
        #expect(run.exitStatus == 0, "\(run)")
        #expect(run.stdout.contains("removed 1, coalesced 1, leaf-coalesced 1"), "\(run.stdout)")
        let problems = try scenario.finalProblems()
        #expect(problems.isEmpty, "\(problems)")
        // Hidden nodes left are deflated and read-only; leaves are inflated (thick).
        let lvs = try sr.lvm2Report(["lvs", "-o", "lv_name,lv_attr,lv_size"])
        for (uuid, vdi) in try sr.disk() {
            let lv = try #require(lvs.first { $0["lv_name"] == "VHD-" + uuid })
            #expect((lv["lv_attr"]?.dropFirst().first == "r") == vdi.hidden, "\(uuid): \(lv)")
        }
    }

    @Test func onDeviceSR() throws {
        let sr = try TestSR(mode: .device)
        defer { sr.cleanup() }
        let scenario = try GCScenario(sr)
        let run = try scenario.collect()
        #expect(run.exitStatus == 0, "\(run)")
        let problems = try scenario.finalProblems()
        #expect(problems.isEmpty, "\(problems)")
    }

    @Test func garbageOnlyAndNoLeafCoalesce() throws {
        let sr = try TestSR(mode: .path)
        defer { sr.cleanup() }
        let scenario = try GCScenario(sr)
        #expect(try scenario.collect(["--garbage-only"]).stdout.contains("removed 1, coalesced 0, leaf-coalesced 0"))
        #expect(try sr.disk()[scenario.node] != nil && sr.disk()[scenario.garbage] == nil)
        #expect(try scenario.collect(["--no-leaf-coalesce"]).stdout.contains("removed 0, coalesced 1, leaf-coalesced 0"))
        #expect(try sr.disk()[scenario.uBase] != nil)
        #expect(try scenario.collect().stdout.contains("leaf-coalesced 1"))
        #expect(try scenario.finalProblems().isEmpty)
    }

    /// A VDI whose other-config says `leaf-coalesce=false` keeps its chain; the rest is done.
    @Test func leafCoalesceFalseIsHonoured() throws {
        let sr = try TestSR(mode: .path)
        defer { sr.cleanup() }
        let scenario = try GCScenario(sr)
        var record = try #require(sr.fake.vdi(uuid: scenario.u))
        record.otherConfig["leaf-coalesce"] = "false"
        sr.fake.updateVDI(record)
        let run = try scenario.collect()
        #expect(run.stdout.contains("removed 1, coalesced 1, leaf-coalesced 0"), "\(run.stdout)")
        #expect(try sr.disk()[scenario.u]?.parent == scenario.uBase)
        for (x, hash) in scenario.hashes { #expect(try sr.contentHash(x) == hash) }
    }

    /// A merge slowed down by the bandwidth cap: SR operations go on meanwhile (the merge does
    /// not hold the SR lock), `gc --abort` stops it at its next safe point, and the next run
    /// does the work.
    @Test func abortAndConcurrentSROperations() throws {
        let sr = try TestSR(mode: .path)
        defer { sr.cleanup() }
        let scenario = try GCScenario(sr)
        let control = GCControl(run: RunDirectory(root: sr.runDir), sr: sr.srUUID)
        let box = ResultBox()
        Thread.detachNewThread { box.set(try? scenario.collect(["--bandwidth", "1", "--no-leaf-coalesce"])) }
        #expect(eventually(timeout: 30) { control.status()?.step.hasPrefix("coalesce") == true }, "the merge starts")
        // An SR operation while the collector merges: it does not wait for the merge.
        let other = try sr.createVDI(size: 8 << 20)
        try sr.value(try sr.call("vdi_snapshot", vdi: other))
        #expect(control.isRunning, "the collector was still merging when the SR operations finished")
        let abort = try sr.run(arguments: ["gc", "--sr", sr.srUUID, "--abort"])
        #expect(abort.exitStatus == 0 && abort.stdout.contains("no collector running"), "\(abort)")
        #expect(!control.isRunning)
        let aborted = try #require(box.wait(timeout: 30))
        #expect(aborted.stdout.contains("(aborted)") && aborted.stdout.contains("coalesced 0"), "\(aborted.stdout)")
        #expect(sr.treeProblems().isEmpty && sr.strayFiles().isEmpty, "\(sr.treeProblems()) \(sr.strayFiles())")
        for (x, hash) in scenario.hashes { #expect(try sr.contentHash(x) == hash) }
        // The work is done by the next run.
        let done = try scenario.collect(["--no-leaf-coalesce"])
        #expect(done.stdout.contains("coalesced 1"), "\(done.stdout)")
        #expect(sr.treeProblems().isEmpty && sr.strayFiles().isEmpty)
        for (x, hash) in scenario.hashes { #expect(try sr.contentHash(x) == hash) }
    }

    /// `--interval`: the collector stays, looks for work again and again, and stops on `--abort`.
    @Test func intervalRunsUntilAborted() throws {
        let sr = try TestSR(mode: .path)
        defer { sr.cleanup() }
        let scenario = try GCScenario(sr)
        let control = GCControl(run: RunDirectory(root: sr.runDir), sr: sr.srUUID)
        let box = ResultBox()
        Thread.detachNewThread { box.set(try? scenario.collect(["--interval", "0.2"], timeout: 120)) }
        #expect(eventually(timeout: 60) { (try? sr.disk().count) == 4 }, "the first pass does the work")
        // New garbage while it waits: a VDI snapshotted, both deleted.
        let w = try sr.createVDI(size: 8 << 20)
        try sr.writePattern(w, seed: 33)
        let ws = try sr.vdiInfo(try sr.value(try sr.call("vdi_snapshot", vdi: w)))
        let wBase = try #require(try sr.disk()[w]?.parent)
        try sr.value(try sr.call("vdi_delete", vdi: w))
        try sr.value(try sr.call("vdi_delete", vdi: ws))
        #expect(eventually(timeout: 60) { (try? sr.disk()[wBase]) == nil }, "a later pass removes it")
        #expect(control.isRunning)
        #expect(try sr.run(arguments: ["gc", "--sr", sr.srUUID, "--abort"]).exitStatus == 0)
        #expect(box.wait(timeout: 30) != nil, "the collector exits after the abort")
        #expect(!control.isRunning)
        #expect(try scenario.finalProblems().isEmpty)
    }

    /// `sr_detach` stops a running collector first (and keeps new ones from starting meanwhile).
    @Test func detachStopsTheCollector() throws {
        let sr = try TestSR(mode: .path)
        defer { sr.cleanup() }
        let scenario = try GCScenario(sr)
        let control = GCControl(run: RunDirectory(root: sr.runDir), sr: sr.srUUID)
        let box = ResultBox()
        Thread.detachNewThread { box.set(try? scenario.collect(["--bandwidth", "1"])) }
        #expect(eventually(timeout: 30) { control.status()?.step.hasPrefix("coalesce") == true })
        try sr.value(try sr.call("sr_detach"))
        #expect(!control.isRunning)
        #expect(try #require(box.wait(timeout: 30)).stdout.contains("(aborted)"))
        let notAttached = try scenario.collect()
        #expect(notAttached.exitStatus == 1 && notAttached.stderr.contains("not attached"), "\(notAttached)")
        try sr.value(try sr.call("sr_attach"))
        #expect(try scenario.collect().exitStatus == 0)
        #expect(try scenario.finalProblems().isEmpty)
    }

    /// SMAPI calls start a background collector (`smdriver gc --background`, detached) that does
    /// the work on its own.
    @Test func scanStartsABackgroundCollector() throws {
        let sr = try TestSR(mode: .path)
        defer { sr.cleanup() }
        let scenario = try GCScenario(sr)
        sr.autostartCollector = true
        try sr.value(try sr.call("sr_scan"))
        let control = GCControl(run: RunDirectory(root: sr.runDir), sr: sr.srUUID)
        #expect(eventually(timeout: 60) { (try? sr.disk().count) == 4 && !control.isRunning && !control.kicked })
        let problems = try scenario.finalProblems()
        #expect(problems.isEmpty, "\(problems)")
        #expect(control.status()?.state == "idle")
    }

    /// A VDI grown after its snapshot: its base is smaller than the leaf and its BAT has no room,
    /// so the collector grows the base first (through the repository's journaled resize).
    @Test func aResizedLeafIsMergedIntoItsSmallerBase() throws {
        let sr = try TestSR(mode: .path)
        defer { sr.cleanup() }
        try sr.createAndAttach()
        let v = try sr.createVDI(size: 16 << 20)
        try sr.writePattern(v, seed: 9)
        let snap = try sr.vdiInfo(try sr.value(try sr.call("vdi_snapshot", vdi: v)))
        let base = try #require(try sr.disk()[v]?.parent)
        try sr.value(try sr.call("vdi_resize", vdi: v) { $0.setArgs([String(1 << 30)]) })
        try sr.writePattern(v, seed: 10)       // its last sectors now lie far past the base's end
        try sr.value(try sr.call("vdi_delete", vdi: snap))
        let hash = try sr.contentHash(v)
        #expect(try sr.disk()[base]?.virtualSize == 16 << 20)
        let run = try sr.run(arguments: ["gc", "--sr", sr.srUUID])
        #expect(run.stdout.contains("leaf-coalesced 1"), "\(run.stdout)")
        #expect(try sr.contentHash(v) == hash)
        #expect(try sr.disk().keys.sorted() == [v] && sr.disk()[v]?.virtualSize == 1 << 30)
        #expect(sr.treeProblems().isEmpty && sr.strayFiles().isEmpty && sr.recordProblems().isEmpty,
                "\(sr.treeProblems()) \(sr.strayFiles()) \(sr.recordProblems())")
    }

    @Test func refusals() throws {
        let sr = try TestSR(mode: .path)
        defer { sr.cleanup() }
        let unknown = try sr.run(arguments: ["gc", "--sr", UUID().uuidString.lowercased()])
        #expect(unknown.exitStatus == 1 && unknown.stderr.contains("not attached"), "\(unknown)")
        let bad = try sr.run(arguments: ["gc", "--sr", "../etc"])
        #expect(bad.exitStatus != 0 && bad.stderr.contains("--sr must be an SR uuid"), "\(bad)")
        // other-config:gc=false: the collector does nothing.
        let scenario = try GCScenario(sr)
        var record = try #require(sr.fake.sr(uuid: sr.srUUID))
        record.otherConfig["gc"] = "false"
        sr.fake.updateSR(record)
        let disabled = try scenario.collect()
        #expect(disabled.exitStatus == 1 && disabled.stderr.contains("disabled"), "\(disabled)")
        #expect(try sr.disk().count == 7)
    }
}

/// The result of a run on another thread.
final class ResultBox: @unchecked Sendable {
    private let condition = NSCondition()
    private var result: SmdriverResult??

    func set(_ r: SmdriverResult?) { condition.withLock { result = .some(r); condition.broadcast() } }

    /// The result, waiting up to `timeout` seconds; nil if none came.
    func wait(timeout: Double) -> SmdriverResult? {
        condition.withLock {
            let deadline = Date().addingTimeInterval(timeout)
            while result == nil && condition.wait(until: deadline) {}
            return result ?? nil
        }
    }
}

/// Polls `condition` every 50 ms for up to `timeout` seconds.
func eventually(timeout: Double, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if condition() { return true }
        usleep(50_000)
    }
    return condition()
}
