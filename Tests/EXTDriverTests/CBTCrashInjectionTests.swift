import CBT
import FakeXapi
import Foundation
import SMCore
import Testing
import VHD

/// Crash injection at every step of a snapshot of a VDI with CBT on (the snapshot's own steps and
/// the log moves), each recovered by `sr_scan`: afterwards the logs are linked exactly as after
/// the whole snapshot or exactly as before it, the blocks recorded before the crash are still
/// listed, and the next snapshot works.
@Suite struct CBTCrashInjectionTests {
    static let steps = CrashInjectionTests.snapshotSteps + ["cbt.snapshot-after-rename", "cbt.snapshot-after-create"]

    @Test func everyCBTFaultPointIsExercised() throws {
        let inSources = try CrashInjectionTests.faultPointsInSources().filter { $0.hasPrefix("cbt.") }
        #expect(!inSources.isEmpty && inSources.isSubset(of: Set(Self.steps)))
    }

    @Test(arguments: steps)
    func snapshotWithCBTDiesThenRecovers(_ step: String) throws {
        let sr = try TestSR(mode: .path)
        defer { sr.cleanup() }
        try sr.createAndAttach()
        let v = try sr.createVDI(size: 32 << 20)
        try sr.succeed("vdi_enable_cbt", vdi: v)
        try sr.writePattern(v, seed: 5)
        let s0 = try CBTRequestTests.snapshot(sr, v)
        try sr.writePattern(v, seed: 6)
        try CBTRequestTests.track(sr, v, [3, 200])
        let hash = try sr.contentHash(v)
        let logs = CBTLogs(container: try DirectoryContainer(directory: sr.srDirectory))
        let logsBefore = try logs.vdis()
        #expect(logsBefore == [v, s0])

        let crashed = try sr.call("vdi_snapshot", vdi: v, fault: step)
        #expect(crashed.exitStatus == 203, "the process dies at \(step): \(crashed)")
        try sr.value(try sr.call("sr_scan"))
        #expect(sr.strayFiles().isEmpty, "\(sr.strayFiles())")
        #expect(sr.treeProblems().isEmpty, "\(sr.treeProblems())")
        #expect(try sr.contentHash(v) == hash)

        let completes = !["snapshot.after-journal", "snapshot.after-rename", "snapshot.after-leaf"].contains(step)
        let now = try logs.vdis()
        if completes {
            let new = now.subtracting(logsBefore)
            #expect(new.count == 1, "the copy took the VDI's log: \(now)")
            let c = try #require(new.first)
            #expect(try logs.header(s0).child == c && logs.header(c).parent == s0)
            #expect(try logs.header(c).child == v && logs.header(v).parent == c)
            #expect(try logs.header(c).consistent && logs.header(v).consistent)
            let listed = try logs.changedBlocks(from: s0, to: c).bitmap
            #expect((0..<512).filter { listed.isSet(UInt64($0)) } == [3, 200])
            #expect(try sr.contentHash(c) == hash)
            #expect(sr.fake.vdi(uuid: c)?.cbtEnabled == true, "the scan introduced the copy with cbt_enabled")
        } else {
            #expect(now == logsBefore, "the logs as before: \(now)")
            #expect(try logs.header(s0).child == v && logs.header(v).parent == s0)
            let listed = try logs.changedBlocks(from: s0, to: v).bitmap
            #expect((0..<512).filter { listed.isSet(UInt64($0)) } == [3, 200])
        }
        // The SR keeps working: the next snapshot links after whatever recovery left.
        let next = try CBTRequestTests.snapshot(sr, v)
        #expect(try logs.header(next).child == v && logs.header(v).parent == next)
        #expect(sr.strayFiles().isEmpty && sr.treeProblems().isEmpty)
    }
}
