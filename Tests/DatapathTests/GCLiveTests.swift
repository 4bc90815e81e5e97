import Foundation
import Logging
import SMCore
import Testing
import VHD

/// The collector against a running disk: a real libnbd client writes without pause while
/// snapshots are taken and deleted and the collector works on the chain under it. Every
/// acknowledged write must be in the live disk afterwards (through the VHD files and through
/// another NBD client), the tree sound, the chain short; the pauses are measured and reported.
@Suite(.serialized) struct GCLiveTests {
    /// The collector on its own thread, running again and again until stopped.
    final class Background: @unchecked Sendable {
        private let condition = NSCondition()
        private var stopping = false
        private var finished = false
        private(set) var reports: [GCReport] = []

        init(sr: String, directory: String, run: RunDirectory, options: GCOptions) {
            Thread.detachNewThread { [self] in
                let gc = GarbageCollector(sr: sr, repo: VHDRepository(container: try! DirectoryContainer(directory: directory)),
                                          run: run, log: Logger(label: "gc", factory: { _ in SwiftLogNoOpLogHandler() }), options: options)
                while !condition.withLock({ stopping }) {
                    let r = gc.collect()
                    condition.withLock { reports.append(r) }
                    usleep(100_000)
                }
                condition.withLock { finished = true; condition.broadcast() }
            }
        }

        /// Stops after the run in progress and returns every report.
        func stop() -> [GCReport] {
            condition.withLock {
                stopping = true
                while !finished { condition.wait() }
                return reports
            }
        }
    }

    static func quietLog() -> Logger { Logger(label: "gc", factory: { _ in SwiftLogNoOpLogHandler() }) }

    /// The last acknowledged write of every slot.
    static func lastAcked(_ acks: [SlotWriter.Ack], slots: Int) -> [UInt64] {
        var last = [UInt64](repeating: 0, count: slots)
        for a in acks { last[a.slot] = max(last[a.slot], a.i) }
        return last
    }

    /// Problems of the live disk against the acknowledged writes, read through the VHD chain and
    /// through nbdcopy.
    static func lostWrites(_ sm: TestSM, _ s: Scratch, vdi: String, acks: [SlotWriter.Ack], slots: Int) throws -> [String] {
        let last = lastAcked(acks, slots: slots)
        let live = s.path + "/live.raw"
        try Command.check("nbdcopy", [sm.uri(vdi), live])
        let viaNBD = Array(try Data(contentsOf: URL(fileURLWithPath: live)))
        let viaChain = try s.read(sm.vhd(vdi), count: slots * 4096, at: 0)
        var problems: [String] = []
        for slot in 0..<slots {
            let r = (slot * 4096)..<(slot * 4096 + 4096)
            if SlotWriter.record(viaChain[r], slot: slot) != last[slot] { problems.append("chain slot \(slot)") }
            if SlotWriter.record(viaNBD[r], slot: slot) != last[slot] { problems.append("nbd slot \(slot)") }
        }
        return problems
    }

    @Test func collectorKeepsTheChainShortUnderWritesSnapshotsAndDeletes() throws {
        let s = try Scratch(); defer { s.remove() }
        let sm = try TestSM(s)
        let vdi = try sm.createVDI(mib: 64)
        try sm.ok(.vdiActivate, vdi: vdi, args: ["true"])
        let slots = 4096
        let writer = try SlotWriter(uri: sm.uri(vdi), directory: s.path, slots: slots)
        #expect(writer.waitFor(2000))
        let gc = Background(sr: sm.sr, directory: sm.srDirectory, run: sm.run, options: GCOptions())
        var previous: String?
        var depths: [Int] = []
        for _ in 0..<5 {
            #expect(writer.waitFor(writer.acks().count + 1500))
            let snap = try #require(try sm.ok(.vdiSnapshot, vdi: vdi, driverParams: [:]).structMembers?.first { $0.name == "uuid" }?.value.stringValue)
            if let p = previous { try sm.ok(.vdiDelete, vdi: p) }
            previous = snap
            depths.append(try VHDChain(path: sm.vhd(vdi), provider: s.provider).depth)
        }
        // The last snapshot goes too: the live leaf is merged into its base while the client writes.
        guard let last = previous else { Issue.record("no snapshot was taken"); return }
        try sm.ok(.vdiDelete, vdi: last)
        #expect(writer.waitFor(writer.acks().count + 1500))
        let reports = gc.stop()
        let final = GarbageCollector(sr: sm.sr, repo: VHDRepository(container: try DirectoryContainer(directory: sm.srDirectory)),
                                     run: sm.run, log: Self.quietLog()).collect()
        #expect(writer.waitFor(writer.acks().count + 500), "writes go on after the collector")
        writer.finish()
        let acks = writer.acks()
        #expect(try Self.lostWrites(sm, s, vdi: vdi, acks: acks, slots: slots).isEmpty)
        let all = reports + [final]
        let pauses = all.flatMap(\.pauses)
        #expect(all.contains { !$0.coalesced.isEmpty }, "hidden nodes were coalesced")
        #expect(all.contains { $0.leafCoalesced == [vdi] }, "the live leaf was coalesced")
        // Only the disk is left, one image, sound.
        let files = try FileManager.default.contentsOfDirectory(atPath: sm.srDirectory).filter { $0.hasSuffix(".vhd") }
        #expect(files == [vdi + ".vhd"], "\(files)")
        #expect(try VHDChain(path: sm.vhd(vdi), provider: s.provider).depth == 1)
        #expect(s.problems(sm.vhd(vdi)).isEmpty)
        let stats = try DatapathControlClient(socketPath: sm.datapath(vdi).controlSocket).stats()
        #expect(!stats.paused && stats.errors == 0)
        try sm.ok(.vdiDeactivate, vdi: vdi)
        print("GC live: \(acks.count) acknowledged writes, chain depth after each snapshot \(depths), "
              + "\(pauses.count) pauses, longest \(String(format: "%.3f", pauses.max() ?? 0)) s, "
              + "mean \(String(format: "%.3f", pauses.isEmpty ? 0 : pauses.reduce(0, +) / Double(pauses.count))) s")
    }

    /// A base copy served read-only by a datapath of its own is not merged into (its reader would
    /// see its content change); once it is deactivated, the leaf above it is.
    @Test func aParentServedOnItsOwnIsLeftAlone() throws {
        let s = try Scratch(); defer { s.remove() }
        let sm = try TestSM(s)
        let vdi = try sm.createVDI(mib: 8)
        try s.write(sm.vhd(vdi), pattern(1 << 20, seed: 61), at: 0)
        let snap = try #require(try sm.ok(.vdiSnapshot, vdi: vdi, driverParams: [:]).structMembers?.first { $0.name == "uuid" }?.value.stringValue)
        try s.write(sm.vhd(vdi), pattern(1 << 20, seed: 62), at: 1 << 20)
        try sm.ok(.vdiDelete, vdi: snap)
        let repo = VHDRepository(container: try DirectoryContainer(directory: sm.srDirectory))
        let base = try #require(try repo.state(vdi).parent)
        try sm.ok(.vdiActivate, vdi: base, args: ["false"])
        let gc = GarbageCollector(sr: sm.sr, repo: repo, run: sm.run, log: Self.quietLog())
        #expect(gc.collect().leafCoalesced.isEmpty)
        #expect(try repo.state(vdi).parent == base)
        try sm.ok(.vdiDeactivate, vdi: base)
        #expect(gc.collect().leafCoalesced == [vdi])
        #expect(try repo.state(vdi).parent == nil)
        #expect(try s.read(sm.vhd(vdi), count: 2 << 20, at: 0) == pattern(1 << 20, seed: 61) + pattern(1 << 20, seed: 62))
    }

    /// A leaf written faster than the pause budget allows it to be merged: rounds of
    /// snapshot-and-coalesce run under the writes, then the collector gives up cleanly.
    @Test func aLeafThatOutrunsTheBudgetIsGivenUp() throws {
        let s = try Scratch(); defer { s.remove() }
        let sm = try TestSM(s)
        let vdi = try sm.createVDI(mib: 32)
        try sm.ok(.vdiActivate, vdi: vdi, args: ["true"])
        let slots = 2048
        let writer = try SlotWriter(uri: sm.uri(vdi), directory: s.path, slots: slots)
        #expect(writer.waitFor(2000))
        let snap = try #require(try sm.ok(.vdiSnapshot, vdi: vdi, driverParams: [:]).structMembers?.first { $0.name == "uuid" }?.value.stringValue)
        try sm.ok(.vdiDelete, vdi: snap)
        var options = GCOptions()
        options.pauseBudget = 0.000_001
        options.leafSizeWithoutEstimate = 0
        let report = GarbageCollector(sr: sm.sr, repo: VHDRepository(container: try DirectoryContainer(directory: sm.srDirectory)),
                                      run: sm.run, log: Self.quietLog(), options: options).collect()
        #expect(report.gaveUp[vdi] != nil, "\(report)")
        #expect(report.coalesced.count >= CoalesceTracker.minimumRounds, "snapshot-and-coalesce rounds ran: \(report.coalesced)")
        #expect(report.leafCoalesced.isEmpty)
        #expect(writer.waitFor(writer.acks().count + 500))
        writer.finish()
        #expect(try Self.lostWrites(sm, s, vdi: vdi, acks: writer.acks(), slots: slots).isEmpty)
        // The chain is as short as the rounds left it: the leaf over one base.
        #expect(try VHDChain(path: sm.vhd(vdi), provider: s.provider).depth == 2)
        for f in try FileManager.default.contentsOfDirectory(atPath: sm.srDirectory) where f.hasSuffix(".vhd") {
            #expect(s.problems(sm.srDirectory + "/" + f).isEmpty)
        }
        try sm.ok(.vdiDeactivate, vdi: vdi)
        print("GC give-up: \(report.coalesced.count) rounds, reason: \(report.gaveUp[vdi] ?? "-")")
    }
}
