import CBT
import FakeXapi
import Foundation
import SMCore
import Testing
import VHD

/// The CBT commands as xapi sends them (the `ext-vdi_*_cbt`, `vdi_list_changed_blocks` and
/// `vdi_data_destroy` request documents) through `smdriver` and a fake xapi: logs on disk, the
/// callbacks, the answers and the faults.
@Suite struct CBTRequestTests {
    /// Marks `blocks` in VDI `vdi`'s log as its datapath would (and closes it cleanly).
    static func track(_ sr: TestSR, _ vdi: String, _ blocks: [UInt64]) throws {
        let logs = CBTLogs(container: try DirectoryContainer(directory: sr.srDirectory))
        let t = try #require(try CBTTracker.open(logs, vdi: vdi))
        for b in blocks { t.mark(offset: b << 16, length: 1) }
        try t.close()
    }

    /// `vdi_snapshot` of `vdi`, and xapi's part: the new record marked a snapshot.
    static func snapshot(_ sr: TestSR, _ vdi: String) throws -> String {
        let snap = try sr.vdiInfo(try sr.succeed("vdi_snapshot", vdi: vdi))
        var r = try #require(sr.fake.vdi(uuid: snap))
        r.isASnapshot = true
        sr.fake.updateVDI(r)
        return snap
    }

    /// `vdi_list_changed_blocks` from `from` to `to` (by its ref, as xapi passes it).
    static func list(_ sr: TestSR, _ from: String, _ to: String) throws -> SmdriverResult {
        let ref = try #require(sr.fake.vdi(uuid: to)?.ref)
        return try sr.call("vdi_list_changed_blocks", vdi: from) { $0.setArgs([ref]) }
    }

    @Test func enableSnapshotListDataDestroyDelete() throws {
        let sr = try TestSR(mode: .path)
        defer { sr.cleanup() }
        try sr.createAndAttach()
        let info = try sr.succeed("sr_get_driver_info")
        #expect("\(info)".contains("VDI_CONFIG_CBT"))
        let v = try sr.createVDI(size: 32 << 20)
        let log = sr.srDirectory + "/" + v + ".cbtlog"

        #expect(try sr.succeed("vdi_enable_cbt", vdi: v).isNil)
        #expect(FileManager.default.fileExists(atPath: log))
        #expect(sr.fake.vdi(uuid: v)?.cbtEnabled == true)
        #expect(try sr.succeed("vdi_enable_cbt", vdi: v).isNil, "enabling twice is a no-op")
        // 48 bytes of header, 512 blocks = 64 bytes of bitmap; consistent, unlinked.
        let bytes = try Data(contentsOf: URL(fileURLWithPath: log))
        #expect(bytes.count == 48 + 64 && bytes[32] == 1 && bytes[0..<32].allSatisfy { $0 == 0 })
        #expect(bytes[40..<48] == Data([0, 0, 0, 2, 0, 0, 0, 0]))

        let s1 = try Self.snapshot(sr, v)
        #expect(sr.fake.vdi(uuid: s1)?.cbtEnabled == true)
        try Self.track(sr, v, [0, 7, 300])
        let s2 = try Self.snapshot(sr, v)
        try Self.track(sr, v, [8])
        let s3 = try Self.snapshot(sr, v)
        #expect(sr.strayFiles().isEmpty, "\(sr.strayFiles())")

        // Blocks 0, 7, 8, 300 of 512: bytes 0x81 0x80 ... byte 37 = 0x08 (block 300 = 37*8+4).
        var expected = [UInt8](repeating: 0, count: 64)
        expected[0] = 0x81; expected[37] = 0x08
        #expect(try sr.value(try Self.list(sr, s2, s3)).stringValue == Data([0x00, 0x80] + [UInt8](repeating: 0, count: 62)).base64EncodedString())
        let both = try sr.value(try Self.list(sr, s1, s3)).stringValue
        expected[1] = 0x80
        #expect(both == Data(expected).base64EncodedString())
        #expect(sr.fault(try Self.list(sr, s3, s1))?.code == 460)
        #expect(sr.fault(try Self.list(sr, s1, s1))?.code == 460)

        // Enabling on a snapshot is refused (66), as the Python SM does.
        #expect(sr.fault(try sr.call("vdi_enable_cbt", vdi: s2))?.code == 66)

        // data_destroy: s2's VHD goes, its log stays, and a scan keeps the record.
        #expect(try sr.succeed("vdi_data_destroy", vdi: s2).isNil)
        #expect(!FileManager.default.fileExists(atPath: sr.path(s2)))
        #expect(FileManager.default.fileExists(atPath: sr.srDirectory + "/" + s2 + ".cbtlog"))
        try sr.value(try sr.call("sr_scan"))
        #expect(sr.fake.vdi(uuid: s2) != nil, "the cbt_metadata VDI stays")
        #expect(try sr.value(try Self.list(sr, s1, s3)).stringValue == Data(expected).base64EncodedString(),
                "the list still spans a data-destroyed snapshot")
        #expect(sr.fault(try sr.call("vdi_data_destroy", vdi: v))?.code == 66, "not a snapshot")

        // Deleting the metadata VDI merges its blocks into s3's log.
        #expect(try sr.succeed("vdi_delete", vdi: s2).isNil)
        #expect(!FileManager.default.fileExists(atPath: sr.srDirectory + "/" + s2 + ".cbtlog"))
        #expect(sr.fake.vdi(uuid: s2) == nil)
        #expect(try sr.value(try Self.list(sr, s1, s3)).stringValue == Data(expected).base64EncodedString())

        // Disable: the log goes, the snapshot before it loses its child.
        #expect(try sr.succeed("vdi_disable_cbt", vdi: v).isNil)
        #expect(!FileManager.default.fileExists(atPath: log) && sr.fake.vdi(uuid: v)?.cbtEnabled == false)
        let logs = CBTLogs(container: try DirectoryContainer(directory: sr.srDirectory))
        #expect(try logs.header(s3).child == nil)
        // A clone does not take the log.
        try sr.succeed("vdi_enable_cbt", vdi: v)
        let clone = try sr.vdiInfo(try sr.succeed("vdi_clone", vdi: v))
        #expect(try !logs.exists(clone) && logs.exists(v) && logs.header(v).parent == nil)
        try sr.value(try sr.call("sr_scan"))
        #expect(sr.recordProblems().isEmpty, "\(sr.recordProblems())")
        #expect(sr.treeProblems().isEmpty)
    }

    /// The collector after a data_destroy: the base copy the destroyed snapshot held is merged
    /// away like any other, the cbt_metadata VDI (log and record) stays, the list still answers.
    @Test func collectorAfterDataDestroy() throws {
        let sr = try TestSR(mode: .path)
        defer { sr.cleanup() }
        try sr.createAndAttach()
        let v = try sr.createVDI(size: 32 << 20)
        try sr.succeed("vdi_enable_cbt", vdi: v)
        try sr.writePattern(v, seed: 1)
        let s1 = try Self.snapshot(sr, v)
        try sr.writePattern(v, seed: 2)
        try Self.track(sr, v, [2, 40])
        let s2 = try Self.snapshot(sr, v)
        let (hashV, hashS2) = (try sr.contentHash(v), try sr.contentHash(s2))
        let hiddenBefore = try sr.disk().values.filter(\.hidden).count
        try sr.succeed("vdi_data_destroy", vdi: s1)
        let gc = try sr.run(arguments: ["gc", "--sr", sr.srUUID])
        #expect(gc.exitStatus == 0, "\(gc)")
        let disk = try sr.disk()
        #expect(disk[s1] == nil && disk.values.filter(\.hidden).count < hiddenBefore, "the collector merged a base away: \(gc.stdout)")
        #expect(try sr.contentHash(v) == hashV && sr.contentHash(s2) == hashS2)
        #expect(sr.fake.vdi(uuid: s1) != nil, "the collector leaves the cbt_metadata record")
        let logs = CBTLogs(container: try DirectoryContainer(directory: sr.srDirectory))
        #expect(try logs.vdis() == [s1, s2, v])
        let listed = try logs.changedBlocks(from: s1, to: s2).bitmap
        #expect((0..<512).filter { listed.isSet(UInt64($0)) } == [2, 40])
        try sr.value(try sr.call("sr_scan"))
        #expect(sr.fake.vdi(uuid: s1) != nil, "a scan keeps it too")
        #expect(sr.treeProblems().isEmpty && sr.strayFiles().isEmpty, "\(sr.treeProblems()) \(sr.strayFiles())")
        #expect(sr.recordProblems().isEmpty, "\(sr.recordProblems())")
    }

    @Test func resizeGrowsTheLog() throws {
        let sr = try TestSR(mode: .path)
        defer { sr.cleanup() }
        try sr.createAndAttach()
        let v = try sr.createVDI(size: 16 << 20)
        try sr.succeed("vdi_enable_cbt", vdi: v)
        try sr.succeed("vdi_resize", vdi: v) { $0.setArgs([String(40 << 20)]) }
        let logs = CBTLogs(container: try DirectoryContainer(directory: sr.srDirectory))
        let h = try logs.header(v)
        #expect(h.size == 40 << 20 && h.consistent)
        #expect(try Data(contentsOf: URL(fileURLWithPath: sr.srDirectory + "/" + v + ".cbtlog")).count == 48 + 80)
    }
}
