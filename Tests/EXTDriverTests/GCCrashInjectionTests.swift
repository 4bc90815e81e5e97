import Foundation
import SMCore
import VHD
import Testing

/// Crash injection in the collector: `smdriver gc` is killed (`SWIFTSM_FAULT`, exit 203) at every
/// step of garbage removal, coalesce, relink and leaf coalesce. Recovery comes from the next
/// collector run, or first from an SMAPI scan or attach (which finish the collector's journals
/// when none runs). Afterwards every VHD passes check, every VDI reads back as before, nothing is
/// left behind, the records match the disk, and the collector's work is complete.
@Suite struct GCCrashInjectionTests {
    /// The collector's fault points, in the order a run meets them in `GCScenario`.
    static let steps = [
        "gc.garbage.before-remove",
        "gc.coalesce.after-journal", "gc.coalesce.mid-merge", "gc.coalesce.after-merge", "gc.coalesce.after-relink-journal",
        "gc.relink.after-child", "gc.relink.before-remove", "gc.relink.before-commit",
        "gc.leaf.after-journal", "gc.leaf.mid-merge", "gc.leaf.after-merge", "gc.leaf.after-rename-old",
        "gc.leaf.after-unhide", "gc.leaf.after-rename-parent", "gc.leaf.before-commit",
    ]

    /// One crash and what recovers from it.
    struct Crash: Sendable, CustomTestStringConvertible {
        var step: String
        var recoveredBy: String
        var testDescription: String { "gc dies at \(step), \(recoveredBy) recovers" }
    }

    static let crashes = steps.map { Crash(step: $0, recoveredBy: "gc") }
        + steps.filter { $0.hasPrefix("gc.relink") || $0.hasPrefix("gc.leaf") || $0.hasSuffix("relink-journal") }
            .map { Crash(step: $0, recoveredBy: "sr_scan") }
        + ["gc.relink.after-child", "gc.leaf.after-rename-old"].map { Crash(step: $0, recoveredBy: "sr_attach") }

    @Test func everyCollectorFaultPointIsExercised() throws {
        let inSources = try CrashInjectionTests.faultPointsInSources().filter { $0.hasPrefix("gc.") }
        #expect(inSources == Set(Self.steps), "untested: \(inSources.subtracting(Self.steps)), unknown: \(Set(Self.steps).subtracting(inSources))")
    }

    /// On a local file SR and on an LVHD SR over iSCSI (a coalesce into a deflated parent inflates
    /// it first and deflates it after; journals are LVs).
    @Test(arguments: crashes, [SRMode.path, .lvmoiscsi])
    func crashThenRecover(_ crash: Crash, _ mode: SRMode) throws {
        if mode == .lvmoiscsi, let why = ISCSITestTarget.unavailableReason { try Test.cancel(Comment(rawValue: why)) }
        let sr = try TestSR(mode: mode)
        defer { sr.cleanup() }
        let scenario = try GCScenario(sr)
        let crashed = try scenario.collect(fault: crash.step)
        #expect(crashed.exitStatus == 203, "the collector dies at \(crash.step): \(crashed)")

        if crash.recoveredBy != "gc" {
            // The SMAPI call finishes or rolls back the collector's journals on its own.
            try sr.value(try sr.call(crash.recoveredBy))
            #expect(sr.strayFiles().isEmpty, "left after \(crash.recoveredBy): \(sr.strayFiles())")
            #expect(sr.treeProblems().isEmpty, "\(sr.treeProblems())")
            for (x, hash) in scenario.hashes { #expect(try sr.contentHash(x) == hash, "VDI \(x) after \(crash.recoveredBy)") }
            try sr.value(try sr.call("sr_scan"))
            #expect(sr.recordProblems().isEmpty, "\(sr.recordProblems())")
        }
        let finished = try scenario.collect()
        #expect(finished.exitStatus == 0, "\(finished)")
        let problems = try scenario.finalProblems()
        #expect(problems.isEmpty, "\(problems)")
    }
}

/// A leaf too big to merge within the pause budget (more than 20 MiB and no speed recorded yet)
/// is first shrunk by a snapshot-and-coalesce round; the collector dies at each step of the
/// round's snapshot, and the next run still merges everything with the content intact.
@Suite struct GCLeafRoundCrashTests {
    /// A new SR with one VDI holding 40 MiB in its leaf (over the 20 MiB a merge may hold without
    /// a speed estimate) alone on its hidden base, its snapshot deleted; returns the VDI.
    static func bigLeaf(_ sr: TestSR, seed: UInt8) throws -> String {
        try sr.createAndAttach()
        let u = try sr.createVDI(size: 64 << 20)
        let snap = try sr.vdiInfo(try sr.value(try sr.call("vdi_snapshot", vdi: u)))
        let chain = try VHDChain(path: sr.path(u), provider: sr.provider, writable: true)
        for i in 0..<40 { try chain.write([UInt8](repeating: UInt8(truncatingIfNeeded: Int(seed) + i), count: 1 << 20), at: UInt64(i) << 20) }
        try chain.flush()
        try sr.value(try sr.call("vdi_delete", vdi: snap))
        return u
    }

    @Test(arguments: CrashInjectionTests.snapshotSteps)
    func crashInASnapshotRound(_ step: String) throws {
        let sr = try TestSR(mode: .path)
        defer { sr.cleanup() }
        let u = try Self.bigLeaf(sr, seed: 1)
        let hash = try sr.contentHash(u)
        let crashed = try sr.run(arguments: ["gc", "--sr", sr.srUUID], fault: step)
        #expect(crashed.exitStatus == 203, "\(crashed)")
        let finished = try sr.run(arguments: ["gc", "--sr", sr.srUUID])
        #expect(finished.exitStatus == 0 && finished.stdout.contains("leaf-coalesced 1"), "\(finished)")
        #expect(try sr.contentHash(u) == hash)
        #expect(try sr.disk().keys.sorted() == [u] && sr.disk()[u]?.parent == nil)
        #expect(sr.treeProblems().isEmpty && sr.strayFiles().isEmpty, "\(sr.treeProblems()) \(sr.strayFiles())")
        #expect(sr.recordProblems().isEmpty, "\(sr.recordProblems())")
    }

    @Test func aBigOfflineLeafGoesThroughOneRound() throws {
        let sr = try TestSR(mode: .path)
        defer { sr.cleanup() }
        let u = try Self.bigLeaf(sr, seed: 7)
        let hash = try sr.contentHash(u)
        let run = try sr.run(arguments: ["gc", "--sr", sr.srUUID])
        #expect(run.stdout.contains("coalesced 1, leaf-coalesced 1"), "one round (a coalesce), then the leaf: \(run.stdout)")
        #expect(try sr.contentHash(u) == hash)
        #expect(try sr.disk().keys.sorted() == [u])
        #expect(sr.treeProblems().isEmpty && sr.strayFiles().isEmpty && sr.recordProblems().isEmpty)
    }
}
