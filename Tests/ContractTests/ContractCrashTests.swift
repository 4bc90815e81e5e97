import CBT
import Foundation
import Logging
import SMCore
import Testing
import TestContainers
import VHD

/// Crash injection against every container: a child process (a Swift Testing exit test) runs
/// a repository operation or the collector with `SWIFTSM_FAULT` set and dies at that step
/// (status 203) with the container as a crash leaves it. Recovery, as attach and scan run it
/// (the repository's journals, then the collector's), must leave every acknowledged byte
/// readable, no journal, no half-made volume and every image sound; the operation or the
/// collector then completes.
@Suite(.serialized) struct ContractCrashTests {
    /// The repository's fault points.
    static let repositorySteps = [
        "create.before-rename",
        "snapshot.after-journal", "snapshot.after-rename", "snapshot.after-leaf", "snapshot.after-copy", "snapshot.before-commit",
    ]
    /// The CBT log moves inside a snapshot (`CBTLogs.linkSnapshot`).
    static let cbtSteps = ["cbt.snapshot-after-rename", "cbt.snapshot-after-create"]
    /// The collector's fault points, in the order a run over `GCTree` meets them.
    static let collectorSteps = [
        "gc.garbage.before-remove",
        "gc.coalesce.after-journal", "gc.coalesce.mid-merge", "gc.coalesce.after-merge", "gc.coalesce.after-relink-journal",
        "gc.relink.after-child", "gc.relink.before-remove", "gc.relink.before-commit",
        "gc.leaf.after-journal", "gc.leaf.mid-merge", "gc.leaf.after-merge", "gc.leaf.after-rename-old",
        "gc.leaf.after-unhide", "gc.leaf.after-rename-parent", "gc.leaf.before-commit",
    ]

    /// One crash: where, in which container, and what recovers (`scan`: the repository's and
    /// the collector's journals recovered as a scan does, then the collector; `gc`: the next
    /// collector alone).
    struct Crash: Codable, Sendable, CustomTestStringConvertible {
        var kind: ContainerKind
        var step: String
        var recoveredBy = "scan"
        var testDescription: String { "\(kind.rawValue): dies at \(step), \(recoveredBy) recovers" }
    }

    static func crashes(_ steps: [String], recoveredBy: [String] = ["scan"]) -> [Crash] {
        ContainerKind.allCases.flatMap { k in recoveredBy.flatMap { r in steps.map { Crash(kind: k, step: $0, recoveredBy: r) } } }
    }

    /// The fault points named in SMCore's sources.
    static func faultPointsInSources() throws -> Set<String> {
        let sources = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../Sources/SMCore").standardized
        var found: Set<String> = []
        let files = FileManager.default.enumerator(atPath: sources.path)
        while let f = files?.nextObject() as? String {
            guard f.hasSuffix(".swift") else { continue }
            let text = try String(contentsOfFile: sources.path + "/" + f, encoding: .utf8)
            for part in text.components(separatedBy: "FaultPoint.hit(\"").dropFirst() {
                found.insert(String(part.prefix { $0 != "\"" }))
            }
        }
        return found
    }

    @Test func everyFaultPointIsExercised() throws {
        let inSources = try Self.faultPointsInSources()
        let tested = Set(Self.repositorySteps + Self.collectorSteps + Self.cbtSteps)
        #expect(!inSources.isEmpty)
        #expect(inSources == tested, "untested: \(inSources.subtracting(tested)), unknown: \(tested.subtracting(inSources))")
    }

    @Test(arguments: crashes(repositorySteps))
    func repositoryCrashThenRecover(_ crash: Crash) async throws {
        let sr = try ContractSR(crash.kind)
        defer { sr.cleanup() }
        let repo = try sr.repository()
        let v = VDIName.newUUID(), made = VDIName.newUUID(), copy = VDIName.newUUID(), base = VDIName.newUUID()
        _ = try repo.create(uuid: v, size: 16 << 20)
        try Contents.writePattern(repo, v, seed: 1)
        let before = try Contents.hash(repo, v)
        let (kind, location, step) = (crash.kind, sr.location, crash.step)
        await #expect(processExitsWith: .exitCode(203), "the operation dies at \(step)") { [kind = kind as ContainerKind, location = location as String, step = step as String, v = v as String, made = made as String,
                                                                                      copy = copy as String, base = base as String] in
            setenv("SWIFTSM_FAULT", step, 1)
            let repo = VHDRepository(container: try kind.open(location))
            if step.hasPrefix("create.") {
                _ = try repo.create(uuid: made, size: 8 << 20)
            } else {
                _ = try repo.snapshot(uuid: v, copyUUID: copy, baseUUID: base)
            }
        }
        // Recovery as attach and scan run it, in a new process's container.
        let recovered = try sr.repository()
        let r = try recovered.recover()
        try expectNoLeftovers(recovered)
        try expectChecked(recovered)
        try expectSized(recovered)
        #expect(try Contents.hash(recovered, v) == before, "every acknowledged byte of \(v) after \(r)")
        let tree = try recovered.scan()
        if step.hasPrefix("create.") {
            #expect(tree[made] == nil, "a create that did not finish leaves nothing")
            _ = try recovered.create(uuid: made, size: 8 << 20)
        } else if ["snapshot.after-copy", "snapshot.before-commit"].contains(step) {
            // Both leaves were made: the snapshot is completed.
            #expect(r.completed == ["snapshot_" + v], "\(r)")
            #expect(tree[base]?.hidden == true && tree[v]?.parent == base && tree[copy]?.parent == base)
            #expect(try Contents.hash(recovered, copy) == before)
        } else {
            #expect(r.rolledBack == ["snapshot_" + v], "\(r)")
            #expect(tree[copy] == nil && tree[base] == nil && tree[v]?.parent == nil && tree[v]?.hidden == false)
        }
        // The VDI is activated (its leaf prepared) and written again.
        let more = Contents.pattern(2 << 20, seed: 9)
        try Contents.write(recovered, v, more, at: 6 << 20)
        #expect(try Contents.read(recovered, v, count: more.count, at: 6 << 20) == more)
        try expectChecked(recovered)
        try expectSized(recovered)
    }

    /// A snapshot of a VDI with a CBT log dies at each of its steps: recovery leaves the logs
    /// linked as after the snapshot (when it completes it) or as before it, and the blocks
    /// recorded before the crash are listed after the previous snapshot either way.
    @Test(arguments: crashes(Array(repositorySteps.dropFirst()) + cbtSteps))
    func snapshotWithCBTCrashThenRecover(_ crash: Crash) async throws {
        try await snapshotWithCBT(crash, written: true)
    }

    /// The same when nothing was written since the last snapshot (no base is made, only the logs move).
    @Test(arguments: crashes(cbtSteps))
    func snapshotOfAnUnwrittenLeafWithCBTCrashThenRecover(_ crash: Crash) async throws {
        try await snapshotWithCBT(crash, written: false)
    }

    func snapshotWithCBT(_ crash: Crash, written: Bool) async throws {
        let sr = try ContractSR(crash.kind)
        defer { sr.cleanup() }
        let repo = try sr.repository()
        let v = VDIName.newUUID(), s0 = VDIName.newUUID(), copy = VDIName.newUUID(), base = VDIName.newUUID()
        _ = try repo.create(uuid: v, size: 16 << 20)
        try repo.cbtLogs.enable(v, size: 16 << 20)
        try Contents.writePattern(repo, v, seed: 1)
        _ = try repo.snapshot(uuid: v, copyUUID: s0, linkCBT: true)
        if written { try Contents.writePattern(repo, v, seed: 2) }
        let tracker = try #require(try CBTTracker.open(repo.cbtLogs, vdi: v))
        tracker.mark(offset: 3 << 16, length: 1)
        try tracker.close()
        let (kind, location, step) = (crash.kind, sr.location, crash.step)
        await #expect(processExitsWith: .exitCode(203), "the snapshot dies at \(step)") { [kind = kind as ContainerKind, location = location as String, step = step as String, v = v as String,
                                                                                     copy = copy as String, base = base as String] in
            setenv("SWIFTSM_FAULT", step, 1)
            let repo = VHDRepository(container: try kind.open(location))
            _ = try repo.snapshot(uuid: v, copyUUID: copy, baseUUID: base, linkCBT: true)
        }
        let recovered = try sr.repository()
        let r = try recovered.recover()
        try expectNoLeftovers(recovered)
        try expectChecked(recovered)
        let logs = recovered.cbtLogs
        if !written {
            #expect(r.completed == ["snapshot_" + v] && r.rolledBack.isEmpty, "\(r)")
        }
        if ["snapshot.after-copy", "snapshot.before-commit"].contains(step) || step.hasPrefix("cbt.") {
            if written { #expect(r.completed == ["snapshot_" + v], "\(r)") }
            #expect(try logs.header(s0).child == copy && logs.header(copy).parent == s0)
            #expect(try logs.header(copy).child == v && logs.header(v).parent == copy && logs.header(v).child == nil)
            let listed = try logs.changedBlocks(from: s0, to: copy).bitmap
            #expect((0..<256).filter { listed.isSet(UInt64($0)) } == [3])
        } else {
            #expect(r.rolledBack == ["snapshot_" + v], "\(r)")
            #expect(try !logs.exists(copy) && logs.header(s0).child == v && logs.header(v).parent == s0)
            let listed = try logs.changedBlocks(from: s0, to: v).bitmap
            #expect((0..<256).filter { listed.isSet(UInt64($0)) } == [3])
        }
    }

    @Test(arguments: crashes(collectorSteps, recoveredBy: ["scan", "gc"]))
    func collectorCrashThenRecover(_ crash: Crash) async throws {
        let sr = try ContractSR(crash.kind)
        defer { sr.cleanup() }
        let tree = try GCTree(try sr.repository())
        let (kind, location, step, sr_, runRoot) = (crash.kind, sr.location, crash.step, sr.sr, sr.run.root)
        await #expect(processExitsWith: .exitCode(203), "the collector dies at \(step)") { [kind = kind as ContainerKind, location = location as String, step = step as String, sr_ = sr_ as String,
                                                                                      runRoot = runRoot as String] in
            setenv("SWIFTSM_FAULT", step, 1)
            let gc = GarbageCollector(sr: sr_, repo: VHDRepository(container: try kind.open(location)), run: RunDirectory(root: runRoot),
                                      log: Logger(label: "gc", factory: { _ in SwiftLogNoOpLogHandler() }))
            gc.collect()
        }
        let repo = try sr.repository()
        if crash.recoveredBy == "scan" {
            // Recovery as an SR scan runs it when no collector does: the repository's journals, then the collector's.
            try repo.recover()
            try sr.collector(repo).recoverJournals()
            #expect(try repo.container.journals().isEmpty, "no journal is left after recovery")
            let lost = try tree.hashProblems(repo)
            #expect(lost.isEmpty, "after recovery from \(step): \(lost)")
            try expectChecked(repo)
        }
        // The next collector finishes the work.
        _ = try sr.collector().collect()
        let problems = try tree.finalProblems(try sr.repository())
        #expect(problems.isEmpty, "\(problems)")
        try expectSized(repo)
    }
}
