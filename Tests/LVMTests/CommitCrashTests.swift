import TestSupport
import Foundation
import Testing
import VHD
@testable import LVM

/// Crash-safe commits: a commit interrupted after any number of writes leaves the old or the new
/// version, readable by this engine and by lvm2.
@Suite(.serialized) struct CommitCrashTests {
    /// A 64 MiB PV with a VG and two LVs; `commits` extra commits first (to bring the buffer near its end).
    static func initialImage(metadataSize: UInt64, commits: Int) throws -> [UInt8] {
        let mem = MemoryStore(bytes: [UInt8](repeating: 0, count: 64 << 20), isBlockDevice: true)
        let (dev, first) = try PVDevice.create(on: mem, vgName: "vgcrash", metadataSize: metadataSize)
        var vg = first
        try vg.createLV(name: "MGT", extents: 1, tags: ["mgt"])
        try vg.createLV(name: "VHD-0", extents: 2)
        vg = try dev.commit(vg)
        for i in 0..<commits {
            try vg.addTag("t\(i)", toLV: "VHD-0")
            vg = try dev.commit(vg)
        }
        return mem.bytes
    }

    /// The change every crash point interrupts.
    static func change(_ vg: VolumeGroup) throws -> VolumeGroup {
        var v = vg
        try v.createLV(name: "VHD-1", extents: 3, tags: ["vdi"], id: LVMUUID("VHD1VHD1VHD1VHD1VHD1VHD1VHD1VHD1")!, time: 1_800_000_000)
        try v.resizeLV("VHD-0", extents: 4)
        try v.renameLV("MGT", to: "MGT2")
        return v
    }

    /// Runs the change at every crash point from `bytes`; checks each survivor with our reader and,
    /// where lvm2 is installed, with `vgs` and `vgck`.
    func crashEverywhere(_ bytes: [UInt8], expectWrap: Bool, dropping: Bool = false) throws {
        let before = try PVDevice(store: MemoryStore(bytes: bytes, isBlockDevice: true)).read()
        let measure = CrashingStore(bytes: bytes, limit: nil)
        let dev = try PVDevice(store: measure)
        let after = try dev.commit(try CommitCrashTests.change(try dev.read()))
        let loc = dev.knownLocations[0]
        #expect((loc.offset + loc.size > (dev.metadataAreas[0].area.size)) == expectWrap, "wrap expected: \(expectWrap), loc \(loc)")
        let total = measure.writes
        #expect(total >= 3)
        var outcomes: [UInt64] = []
        for n in 0...total {
            let crashing = CrashingStore(bytes: bytes, limit: n, dropping: dropping)
            var threw = false
            do {
                let d = try PVDevice(store: crashing)
                _ = try d.commit(try CommitCrashTests.change(try d.read()))
            } catch is SimulatedCrash { threw = true }
            #expect(threw == (n < total && !dropping), "crash point \(n) of \(total)")
            let survivor = try PVDevice(store: MemoryStore(bytes: crashing.inner.bytes, isBlockDevice: true)).read()
            let expected = n == total ? after : before
            #expect(survivor == expected, "crash point \(n) of \(total): seqno \(survivor.seqno)")
            outcomes.append(survivor.seqno)
            if lvm2Installed { try checkWithLVM2(crashing.inner.bytes, seqno: survivor.seqno, lvs: survivor.logicalVolumes.map(\.name)) }
        }
        #expect(outcomes == Array(repeating: before.seqno, count: total) + [after.seqno])
    }

    /// lvm2 reads the bytes without a warning and reports seqno `seqno` and exactly `lvs`.
    func checkWithLVM2(_ bytes: [UInt8], seqno: UInt64, lvs: [String]) throws {
        let pv = try LoopPV(size: UInt64(bytes.count)) { try $0.write(Array(bytes[0..<(2 << 20)]), at: 0) }
        defer { pv.close() }
        try pv.attach()
        let vgs = try pv.report(["vgs", "-o", "vg_name,vg_seqno"])
        #expect(vgs.first?["vg_seqno"] == String(seqno))
        let names = try pv.report(["lvs", "-o", "lv_name"]).compactMap { $0["lv_name"] }
        #expect(names.sorted() == lvs.sorted())
        let ck = try pv.lvm(["vgck", "vgcrash"])
        #expect(ck.status == 0 && ck.warnings.isEmpty, "vgck: \(ck.stderr)")
    }

    @Test func commitCrashAtEveryWrite() throws {
        try crashEverywhere(try CommitCrashTests.initialImage(metadataSize: PVDevice.defaultMetadataSize, commits: 0), expectWrap: false)
    }

    @Test func lostWritesLeaveTheOldVersion() throws {
        try crashEverywhere(try CommitCrashTests.initialImage(metadataSize: PVDevice.defaultMetadataSize, commits: 0),
                            expectWrap: false, dropping: true)
    }

    @Test func wrappingCommitCrashAtEveryWrite() throws {
        // Find a history length whose next commit wraps in a 64 KiB area.
        let size: UInt64 = 64 << 10
        for commits in 0..<200 {
            let bytes = try CommitCrashTests.initialImage(metadataSize: size, commits: commits)
            let dev = try PVDevice(store: MemoryStore(bytes: bytes, isBlockDevice: true))
            let text = MetadataText(vg: try CommitCrashTests.change(try dev.read()), description: "x", creationHost: LVMHost.name,
                                    creationTime: LVMHost.now()).encode()
            let header = try dev.metadataAreas[0].readHeader(from: dev.store)
            let next = header.nextOffset
            // The description and time may change the length by a few bytes: keep a margin.
            if next + UInt64(text.count) > header.areaSize + 64 && next + 64 < header.areaSize {
                try crashEverywhere(bytes, expectWrap: true)
                return
            }
        }
        Issue.record("no history made the next commit wrap")
    }

    @Test func createCrashLeavesNothingOrAValidVG() throws {
        let blank = [UInt8](repeating: 0, count: 16 << 20)
        let measure = CrashingStore(bytes: blank, limit: nil)
        _ = try PVDevice.create(on: measure, vgName: "vgnew")
        for n in 0...measure.writes {
            let s = CrashingStore(bytes: blank, limit: n)
            do { _ = try PVDevice.create(on: s, vgName: "vgnew") } catch is SimulatedCrash {}
            let mem = MemoryStore(bytes: s.inner.bytes, isBlockDevice: true)
            do {
                let vg = try PVDevice(store: mem).read()
                #expect(n == measure.writes && vg.name == "vgnew" && vg.seqno == 1)
            } catch let e as LVMError {
                #expect(n < measure.writes, "complete create unreadable: \(e)")
                #expect(e == .noLabel || e == .noMetadata, "crash point \(n): \(e)")
            }
        }
    }
}
