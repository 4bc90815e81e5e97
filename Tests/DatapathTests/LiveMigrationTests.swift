import Foundation
import Logging
import SMCore
import Testing
import VHD

/// A live migration as the datapaths do it, with real `swiftsm-datapath` processes and a real
/// libnbd client writing all along: the source's datapath mirrors to the destination leaf's,
/// the source is snapshotted and the snapshot copied into the destination's base, the base
/// composed under the leaf, then the switch: the writer's connection carries on, on the
/// destination SR, and every acknowledged write is there.
@Suite struct LiveMigrationTests {
    static let log = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    /// Two SRs of one host (one run directory): an active source VDI on the first, an active
    /// empty differencing leaf of the same size on the second (a VDI snapshotted once, that
    /// snapshot deleted, as xapi makes its mirror target, so that a base can be composed under it).
    struct Migration {
        let s: Scratch, d: Scratch
        let source: TestSM, destination: TestSM
        let manager: DatapathManager
        let vdi: String, leaf: String

        init(mib: UInt64) throws {
            s = try Scratch()
            d = try Scratch()
            source = try TestSM(s)
            destination = try TestSM(d, run: s.path + "/run")
            manager = DatapathManager(run: source.run, log: LiveMigrationTests.log)
            vdi = try source.createVDI(mib: mib)
            try source.ok(.vdiActivate, vdi: vdi, args: ["true"])
            leaf = try destination.createVDI(mib: mib)
            let empty = try #require(try destination.ok(.vdiSnapshot, vdi: leaf, driverParams: [:]).structMembers?.first { $0.name == "uuid" }?.value.stringValue)
            try destination.ok(.vdiDelete, vdi: empty)
            try destination.ok(.vdiActivate, vdi: leaf, args: ["true"])
        }

        /// Both VDIs deactivated (whatever runs), the scratch folders removed.
        func remove() {
            _ = source.call(.vdiDeactivate, vdi: vdi)
            _ = destination.call(.vdiDeactivate, vdi: leaf)
            s.remove()
            d.remove()
        }
    }

    @Test func mirrorSnapshotComposeSwitchKeepsTheClientAndEveryWrite() throws {
        let m = try Migration(mib: 32); defer { m.remove() }
        let (s, d, source, destination, manager, vdi, leaf) = (m.s, m.d, m.source, m.destination, m.manager, m.vdi, m.leaf)
        let pid = try #require(source.pid(vdi))
        // Data from before the migration (it reaches the destination through the snapshot copy).
        let before = try s.file("before.raw", pattern(8 << 20, seed: 77))
        try Command.check("qemu-img", ["convert", "-n", "-f", "raw", "-O", "raw", before, source.uri(vdi)])
        let writer = try SlotWriter(uri: source.uri(vdi), directory: s.path, slots: 1024)
        #expect(writer.waitFor(300))

        // The destination's leaf, mirrored to.
        #expect(throws: DatapathError.self) {
            try manager.startMirror(sr: source.sr, vdi: vdi, destinationSR: destination.sr, destinationVDI: UUID().uuidString.lowercased())
        }
        try manager.startMirror(sr: source.sr, vdi: vdi, destinationSR: destination.sr, destinationVDI: leaf)
        let mirrorStats = try DatapathControlClient(socketPath: source.datapath(vdi).controlSocket).stats()
        #expect(mirrorStats.mirrorTarget == leaf)
        #expect(writer.waitFor(writer.acks().count + 300))

        // Snapshot (the mirror goes on through its pause), copied into the destination's base.
        let snap = try #require(try source.ok(.vdiSnapshot, vdi: vdi, driverParams: [:]).structMembers?.first { $0.name == "uuid" }?.value.stringValue)
        let base = try destination.createVDI(mib: 32)
        let flat = try s.file("snap.raw", try s.read(source.vhd(snap), count: 32 << 20, at: 0))
        try destination.ok(.vdiActivate, vdi: base, args: ["true"])
        try Command.check("qemu-img", ["convert", "-n", "-f", "raw", "-O", "raw", flat, destination.uri(base)])
        try destination.ok(.vdiDeactivate, vdi: base)
        try manager.withPaused(sr: destination.sr, vdi: leaf) {
            try VHDRepository(container: DirectoryContainer(directory: destination.srDirectory)).compose(parent: base, child: leaf)
        }
        #expect(writer.waitFor(writer.acks().count + 300))

        // The switch: the source's process now serves the destination leaf, from its folder.
        let held = try manager.switchOver(sr: source.sr, vdi: vdi, destinationDriver: "ext", destinationSR: destination.sr,
                                          destinationVDI: leaf)
        #expect(held < 30)
        #expect(destination.pid(leaf) == pid)
        #expect(source.pid(vdi) == nil)
        #expect(DatapathLauncher.isRunning(pid, directory: destination.datapath(leaf)))
        #expect(!DatapathLauncher.isRunning(pid, directory: source.datapath(vdi)))
        let after = try DatapathControlClient(socketPath: destination.datapath(leaf).controlSocket).stats()
        #expect(after.leaf == leaf + ".vhd" && after.mirrorTarget == nil)
        let acked = writer.acks().count
        #expect(writer.waitFor(acked + 500), "the writer goes on after the switch")
        writer.finish()
        #expect(try DatapathControlClient(socketPath: destination.datapath(leaf).controlSocket).stats().bytesWritten > 0)
        // The source's activation ends without touching the process; the destination's stops it.
        try source.ok(.vdiDeactivate, vdi: vdi)
        #expect(DatapathLauncher.isRunning(pid, directory: destination.datapath(leaf)))
        try destination.ok(.vdiDeactivate, vdi: leaf)
        #expect(DatapathLauncher.waitForExit(pid, timeout: 10))

        // Every acknowledged write is on the destination, over the data from before.
        let acks = writer.acks()
        var last: [Int: UInt64] = [:]
        for a in acks { last[a.slot] = max(last[a.slot] ?? 0, a.i) }
        let bytes = try d.read(destination.vhd(leaf), count: 32 << 20, at: 0)
        let old = Array(try Data(contentsOf: URL(fileURLWithPath: before)))
        var wrong = 0
        for slot in 0..<1024 {
            let range = (slot * 4096)..<(slot * 4096 + 4096)
            if let want = last[slot] {
                if SlotWriter.record(bytes[range], slot: slot) != want { wrong += 1 }
            } else if !bytes[range].elementsEqual(old[range]) { wrong += 1 }
        }
        #expect(wrong == 0, "\(wrong) slots differ from the last acknowledged write")
        #expect(bytes[(4 << 20)..<(8 << 20)].elementsEqual(old[(4 << 20)..<(8 << 20)]), "the data from before the migration")
        #expect(d.problems(destination.vhd(leaf)).isEmpty)
        #expect(acks.count > 1500)
    }

    @Test func aFailedSwitchLeavesTheSourceServing() throws {
        let m = try Migration(mib: 8); defer { m.remove() }
        let (s, source, destination, manager, vdi, leaf) = (m.s, m.source, m.destination, m.manager, m.vdi, m.leaf)
        // Without a mirror there is nothing to switch to.
        #expect(throws: DatapathError.self) {
            try manager.switchOver(sr: source.sr, vdi: vdi, destinationDriver: "ext", destinationSR: destination.sr, destinationVDI: leaf)
        }
        try manager.startMirror(sr: source.sr, vdi: vdi, destinationSR: destination.sr, destinationVDI: leaf)
        // A driver that cannot open the destination: the source's datapath reopens on the source.
        #expect(throws: DatapathError.self) {
            try manager.switchOver(sr: source.sr, vdi: vdi, destinationDriver: "nosuchdriver", destinationSR: destination.sr,
                                   destinationVDI: leaf)
        }
        let stats = try DatapathControlClient(socketPath: source.datapath(vdi).controlSocket).stats()
        #expect(!stats.paused && stats.leaf == vdi + ".vhd" && stats.mirrorTarget == nil)
        let data = try s.file("d.raw", pattern(1 << 20, seed: 5))
        try Command.check("qemu-img", ["convert", "-n", "-f", "raw", "-O", "raw", data, source.uri(vdi)])
        try Command.check("qemu-img", ["compare", "-f", "raw", "-F", "raw", data, source.uri(vdi)])
    }

    @Test func aMirrorThatFailsLeavesTheClientAloneAndRefusesTheSwitch() throws {
        let m = try Migration(mib: 8); defer { m.remove() }
        let (s, source, destination, manager, vdi, leaf) = (m.s, m.source, m.destination, m.manager, m.vdi, m.leaf)
        try manager.startMirror(sr: source.sr, vdi: vdi, destinationSR: destination.sr, destinationVDI: leaf)
        // The destination's data path dies: the client's writes still succeed, the mirror says it failed.
        let target = try #require(destination.pid(leaf))
        kill(target, SIGKILL)
        #expect(DatapathLauncher.waitForExit(target, timeout: 5))
        let data = try s.file("d.raw", pattern(1 << 20, seed: 9))
        try Command.check("qemu-img", ["convert", "-n", "-f", "raw", "-O", "raw", data, source.uri(vdi)])
        let stats = try DatapathControlClient(socketPath: source.datapath(vdi).controlSocket).stats()
        #expect(stats.mirrorTarget == leaf && stats.mirrorFailure != nil)
        // The destination's data path back: the switch still refuses (the mirror missed writes).
        try destination.ok(.vdiActivate, vdi: leaf, args: ["true"])
        #expect(throws: DatapathError.self) {
            try manager.switchOver(sr: source.sr, vdi: vdi, destinationDriver: "ext", destinationSR: destination.sr,
                                   destinationVDI: leaf)
        }
        let after = try DatapathControlClient(socketPath: source.datapath(vdi).controlSocket).stats()
        #expect(!after.paused && after.leaf == vdi + ".vhd" && after.mirrorTarget == nil)
        try Command.check("qemu-img", ["compare", "-f", "raw", "-F", "raw", data, source.uri(vdi)])
    }
}
