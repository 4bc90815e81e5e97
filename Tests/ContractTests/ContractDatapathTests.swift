import Foundation
import SMCore
import Testing
import TestContainers
import VHD

/// The data path against every container: an in-process `Datapath` (its own container
/// instance, as the datapath process rebuilds it) serving a VDI's chain over NBD to real
/// clients, and a snapshot taken under a client that never stops writing.
@Suite(.serialized) struct ContractDatapathTests {
    /// A VDI served in this process after activation (its leaf prepared for growth).
    struct Served {
        let datapath: Datapath
        let directory: DatapathDirectory
        let uri: String

        init(_ sr: ContractSR, vdi: String) throws {
            try sr.repository().prepareLeaf(vdi)
            directory = DatapathDirectory(path: sr.root + "/dp")
            let config = DatapathConfiguration(driver: "contract", srUUID: sr.sr, vdiUUID: vdi, directory: directory, run: sr.run)
            datapath = try Datapath(configuration: config, container: try sr.container(), log: ContractSR.quietLog)
            try datapath.start()
            uri = directory.uri(export: vdi)
        }

        var control: DatapathControlClient { DatapathControlClient(socketPath: directory.controlSocket, timeout: 60) }
    }

    static let mib: UInt64 = 1 << 20

    @Test(arguments: ContainerKind.allCases)
    func nbdRoundTripWithRealClients(_ kind: ContainerKind) throws {
        let sr = try ContractSR(kind)
        defer { sr.cleanup() }
        let repo = try sr.repository()
        let v = VDIName.newUUID()
        _ = try repo.create(uuid: v, size: 32 * Self.mib)
        try Contents.writePattern(repo, v, seed: 1)
        _ = try repo.snapshot(uuid: v, copyUUID: nil)
        try Contents.writePattern(repo, v, seed: 2)
        let expected = try Contents.all(repo, v)
        let served = try Served(sr, vdi: v)
        defer { served.datapath.shutdown() }

        #expect(try Tool.check("nbdinfo", ["--size", served.uri]).trimmingCharacters(in: .whitespacesAndNewlines) == "\(32 * Self.mib)")
        // Read through NBD: the chain's contents.
        try Tool.check("nbdcopy", [served.uri, sr.root + "/read.raw"])
        #expect(Array(try Data(contentsOf: URL(fileURLWithPath: sr.root + "/read.raw"))) == expected)
        // Written through NBD (nbdcopy), compared through NBD by another client (qemu-img).
        let written = Contents.pattern(Int(32 * Self.mib), seed: 3)
        try Data(written).write(to: URL(fileURLWithPath: sr.root + "/new.raw"))
        try Tool.check("nbdcopy", ["--flush", sr.root + "/new.raw", served.uri])
        try Tool.check("qemu-img", ["compare", "-f", "raw", "-F", "raw", sr.root + "/new.raw", served.uri])
        let stats = try served.control.stats()
        #expect(stats.errors == 0 && stats.bytesWritten >= 32 * Self.mib, "\(stats)")
        served.datapath.shutdown()
        // And through the VHD chain once the datapath is gone.
        #expect(try Contents.all(repo, v) == written)
        try expectChecked(repo)
        try expectSized(repo)
    }

    @Test(arguments: ContainerKind.allCases)
    func snapshotsUnderAWritingClientLoseNoAcknowledgedWrite(_ kind: ContainerKind) throws {
        let sr = try ContractSR(kind)
        defer { sr.cleanup() }
        let repo = try sr.repository()
        let v = VDIName.newUUID()
        _ = try repo.create(uuid: v, size: 16 * Self.mib)
        let served = try Served(sr, vdi: v)
        defer { served.datapath.shutdown() }
        let slots = 1024
        let writer = try SlotWriter(uri: served.uri, directory: sr.root, slots: slots)
        defer { writer.finish() }
        #expect(writer.waitFor(1500), "the client writes")
        var snapshots: [(uuid: String, ackedBefore: [UInt64])] = []
        for _ in 0..<3 {
            let acked = writer.lastAcked()
            // What vdi_snapshot does with an active VDI: pause its datapath, snapshot, unpause.
            _ = try served.control.send("pause")
            let s = VDIName.newUUID()
            _ = try sr.repository().snapshot(uuid: v, copyUUID: s)
            _ = try served.control.send("unpause")
            snapshots.append((s, acked))
            #expect(writer.waitFor(writer.count + 1500), "writes go on after the snapshot")
        }
        writer.finish()
        let last = writer.lastAcked()
        let stats = try served.control.stats()
        #expect(stats.errors == 0 && !stats.paused, "\(stats)")
        served.datapath.shutdown()

        // The live disk holds every slot's last acknowledged write.
        let live = try Contents.read(repo, v, count: slots * 4096, at: 0)
        var lost: [Int] = []
        for slot in 0..<slots where SlotWriter.record(live[(slot * 4096)..<(slot * 4096 + 4096)], slot: slot) != last[slot] { lost.append(slot) }
        #expect(lost.isEmpty, "slots without their last acknowledged write: \(lost.prefix(20))")
        // Each snapshot holds, untorn, at least what was acknowledged before its pause.
        for (s, acked) in snapshots {
            let bytes = try Contents.read(repo, s, count: slots * 4096, at: 0)
            var bad: [Int] = []
            for slot in 0..<slots {
                guard let r = SlotWriter.record(bytes[(slot * 4096)..<(slot * 4096 + 4096)], slot: slot), r >= acked[slot] else {
                    bad.append(slot)
                    continue
                }
            }
            #expect(bad.isEmpty, "snapshot \(s): slots missing writes acknowledged before the pause: \(bad.prefix(20))")
        }
        #expect(try VHDChain(path: repo.path(v), provider: repo.container.provider).depth == 4)
        try expectChecked(repo)
        try expectSized(repo)
        print("ContractTests: \(kind.rawValue): \(last.max() ?? 0) writes acknowledged, 3 snapshots under them")
    }
}
