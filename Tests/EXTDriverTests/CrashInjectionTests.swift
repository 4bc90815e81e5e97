import FakeXapi
import Foundation
import SMCore
import Testing
import VHD

/// Crash injection through the executable: every fault point of every journaled operation is
/// armed with `SWIFTSM_FAULT=<step>` (the process exits 203 there, as a crash would), then the SR
/// is scanned (or attached), which runs recovery. Afterwards the SR holds no journal or half-made
/// file, every VHD passes `Check` with its parents, every VDI that existed reads back the same, and
/// the set of VDIs is the one before or the one after the operation. Local file SRs, NFS SRs and
/// LVHD SRs over iSCSI.
@Suite struct CrashInjectionTests {
    /// An operation with fault points.
    enum Operation: String, Sendable, CaseIterable {
        case create, snapshot, clone, singleSnapshot

        var command: String {
            switch self {
            case .create: "vdi_create"
            case .snapshot, .singleSnapshot: "vdi_snapshot"
            case .clone: "vdi_clone"
            }
        }

        /// Whether it makes a second leaf (the snapshot or clone the caller sees).
        var makesCopy: Bool { self == .snapshot || self == .clone }
    }

    /// One crash: an operation, the step it dies at, and the command that recovers.
    struct Crash: Sendable, CustomTestStringConvertible {
        var operation: Operation
        var step: String
        var recoveredBy: String
        var testDescription: String { "\(operation.rawValue) dies at \(step), \(recoveredBy) recovers" }

        /// The outcome recovery promises: an interrupted snapshot is completed when both leaves
        /// are in place (`VHDRepository.finishSnapshot`), else undone; a create is undone.
        var completes: Bool {
            switch step {
            case "snapshot.after-copy", "snapshot.before-commit": return true
            case "snapshot.after-leaf": return !operation.makesCopy
            default: return false
            }
        }
    }

    static let snapshotSteps = ["snapshot.after-journal", "snapshot.after-rename", "snapshot.after-leaf",
                                "snapshot.after-copy", "snapshot.before-commit"]

    static let crashes: [Crash] =
        [Crash(operation: .create, step: "create.before-rename", recoveredBy: "sr_scan")]
        + [Operation.snapshot, .clone, .singleSnapshot].flatMap { op in
            snapshotSteps.map { Crash(operation: op, step: $0, recoveredBy: "sr_scan") }
        }
        + snapshotSteps.map { Crash(operation: .snapshot, step: $0, recoveredBy: "sr_attach") }

    /// The fault points in `Sources/SMCore` (`FaultPoint.hit("<step>")`).
    static func faultPointsInSources() throws -> Set<String> {
        let root = E2EFixtures.packageRoot.appendingPathComponent("Sources/SMCore").path
        var steps: Set<String> = []
        let regex = try NSRegularExpression(pattern: #"FaultPoint\.hit\("([^"]+)"\)"#)
        for case let file as String in FileManager.default.enumerator(atPath: root)! where file.hasSuffix(".swift") {
            let text = try String(contentsOfFile: root + "/" + file, encoding: .utf8)
            for m in regex.matches(in: text, range: NSRange(text.startIndex..., in: text)) {
                steps.insert((text as NSString).substring(with: m.range(at: 1)))
            }
        }
        return steps
    }

    @Test func everyFaultPointIsExercised() throws {
        // The collector's (`gc.*`) are exercised by GCCrashInjectionTests, the CBT logs' (`cbt.*`)
        // by CBTCrashInjectionTests.
        let inSources = try Self.faultPointsInSources().filter { !$0.hasPrefix("gc.") && !$0.hasPrefix("cbt.") }
        #expect(!inSources.isEmpty)
        #expect(inSources == Set(Self.crashes.map(\.step)),
                "fault points without a crash test: \(inSources.subtracting(Self.crashes.map(\.step)))")
    }

    /// On a local file SR, on an NFS SR (the journals and renames go over the network there) and
    /// on an LVHD SR over iSCSI (journals are LVs, every step a VG commit, leaves inflated and
    /// base copies deflated on the way).
    @Test(arguments: crashes, [SRMode.path, .nfs, .lvmoiscsi])
    func crashThenRecover(_ crash: Crash, _ mode: SRMode) throws {
        if mode == .lvmoiscsi, let why = ISCSITestTarget.unavailableReason { try Test.cancel(Comment(rawValue: why)) }
        let sr = try TestSR(mode: mode)
        defer { sr.cleanup() }
        try sr.createAndAttach()

        // A VDI with data in two layers: written, snapshotted cleanly, written again.
        let v = try sr.createVDI(size: 64 << 20)
        try sr.writePattern(v, seed: 11)
        let earlier = try sr.vdiInfo(try sr.value(try sr.call("vdi_snapshot", vdi: v)))
        try sr.writePattern(v, seed: 12)
        try sr.value(try sr.call("sr_scan"))

        let before = try sr.disk()
        let visibleBefore = Set(before.values.filter { !$0.hidden }.map(\.uuid))
        #expect(visibleBefore == [v, earlier])
        var hashes: [String: UInt64] = [:]
        for u in visibleBefore { hashes[u] = try sr.contentHash(u) }
        #expect(hashes[v] != hashes[earlier])

        // The crash.
        let crashed = try sr.call(crash.operation.command, vdi: crash.operation == .create ? nil : v, fault: crash.step) { doc in
            switch crash.operation {
            case .create: doc.setArgs([String(64 << 20), "crash", "", "", "false", "19700101T00:00:00Z", "", "false"])
            case .singleSnapshot: doc[member: "driver_params"] = .struct([XMLRPCMember("type", "single")])
            default: break
            }
        }
        #expect(crashed.exitStatus == 203, "the process dies at \(crash.step): \(crashed)")
        #expect(crashed.stdout.isEmpty, "a crash prints no answer")

        // Recovery.
        let recovered = try sr.call(crash.recoveredBy)
        try sr.value(recovered)
        #expect(sr.strayFiles().isEmpty, "left after recovery: \(sr.strayFiles())")
        let problems = sr.treeProblems()
        #expect(problems.isEmpty, "\(problems)")
        for (u, hash) in hashes {
            #expect(try sr.contentHash(u) == hash, "VDI \(u) reads back differently after recovery")
        }

        let after = try sr.disk()
        let visibleAfter = Set(after.values.filter { !$0.hidden }.map(\.uuid))
        let hiddenBefore = Set(before.values.filter(\.hidden).map(\.uuid))
        let hiddenAfter = Set(after.values.filter(\.hidden).map(\.uuid))
        let newVisible = visibleAfter.subtracting(visibleBefore)
        let newHidden = hiddenAfter.subtracting(hiddenBefore)
        #expect(visibleBefore.isSubset(of: visibleAfter) && hiddenBefore.isSubset(of: hiddenAfter), "nothing is lost")
        if crash.completes {
            // The state after the operation: a new base copy under the VDI (and the copy on it).
            #expect(newHidden.count == 1, "one new base copy: \(newHidden)")
            if let base = newHidden.first {
                #expect(after[v]?.parent == base && after[base]?.parent == before[v]?.parent)
                #expect(newVisible.count == (crash.operation.makesCopy ? 1 : 0))
                for c in newVisible {
                    #expect(after[c]?.parent == base)
                    #expect(try sr.contentHash(c) == hashes[v], "the copy holds the VDI's data")
                }
            }
        } else {
            // The state before the operation, exactly.
            #expect(visibleAfter == visibleBefore && hiddenAfter == hiddenBefore)
            #expect(after[v]?.parent == before[v]?.parent && after[v]?.footerUUID == before[v]?.footerUUID)
        }
        // The records follow the disk after the scan.
        let recordProblems = sr.recordProblems()
        #expect(recordProblems.isEmpty, "\(recordProblems)")

        // The SR keeps working: the same operation now succeeds and leaves a sound tree.
        let again = try sr.call(crash.operation.command, vdi: crash.operation == .create ? nil : v) { doc in
            if crash.operation == .create { doc.setArgs([String(64 << 20), "again", "", "", "false", "19700101T00:00:00Z", "", "false"]) }
        }
        try sr.value(again)
        #expect(sr.treeProblems().isEmpty && sr.strayFiles().isEmpty)
        #expect(try sr.contentHash(v) == hashes[v])
    }

    /// A crash, then more work on the same VDI before any scan (xapi does not scan after a failed
    /// call): the interrupted operation must not be confused with the next one. The second
    /// snapshot may fail, but afterwards recovery leaves a sound tree with every byte in place.
    @Test(arguments: snapshotSteps)
    func snapshotAgainBeforeAnyScan(_ step: String) throws {
        let sr = try TestSR(mode: .path)
        defer { sr.cleanup() }
        try sr.createAndAttach()
        let v = try sr.createVDI(size: 32 << 20)
        try sr.writePattern(v, seed: 21)
        let hash = try sr.contentHash(v)
        let crashed = try sr.call("vdi_snapshot", vdi: v, fault: step)
        #expect(crashed.exitStatus == 203)
        let next = try sr.call("vdi_snapshot", vdi: v)
        #expect(next.exitStatus == 0 && (try? next.response()) != nil, "\(next)")
        let copy = try next.value.map { try sr.vdiInfo($0) }
        try sr.value(try sr.call("sr_scan"))
        #expect(sr.strayFiles().isEmpty, "\(sr.strayFiles())")
        #expect(sr.treeProblems().isEmpty, "\(sr.treeProblems())")
        #expect(try sr.contentHash(v) == hash)
        if let copy { #expect(try sr.contentHash(copy) == hash, "the snapshot that succeeded holds the data") }
        #expect(sr.recordProblems().isEmpty, "\(sr.recordProblems())")
    }
}
