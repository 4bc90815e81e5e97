import CBT
import Foundation
import SMCore
import Testing
import VHD

/// The logs of an SR as the repository moves them: enable, snapshot links (every intermediate
/// state a crash can leave, forwards and back), delete with the bitmap merged into the child,
/// and the changed blocks between two snapshots.
@Suite struct CBTLogsTests {
    final class Dir {
        let path: String
        let logs: CBTLogs
        init() throws {
            path = NSTemporaryDirectory() + "cbt-logs-\(UUID().uuidString)"
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
            logs = CBTLogs(container: try DirectoryContainer(directory: path))
        }
        deinit { try? FileManager.default.removeItem(atPath: path) }
    }

    static let size: UInt64 = 64 << 20
    static func u() -> String { UUID().uuidString.lowercased() }

    /// Marks `blocks` in `vdi`'s log as a datapath would and closes it cleanly.
    static func write(_ logs: CBTLogs, _ vdi: String, blocks: [UInt64]) throws {
        let t = try #require(try CBTTracker.open(logs, vdi: vdi))
        #expect(try !logs.header(vdi).consistent, "an open tracker marks the log inconsistent")
        for b in blocks { t.mark(offset: b * 65536 + 100, length: 10) }
        try t.close()
        #expect(try logs.header(vdi).consistent)
    }

    static func blocks(_ b: CBTBitmap) -> [UInt64] { (0..<UInt64(b.bytes.count * 8)).filter { b.isSet($0) } }

    @Test func snapshotChainAndChangedBlocks() throws {
        let d = try Dir(), logs = d.logs
        let v = Self.u(), s1 = Self.u(), s2 = Self.u(), s3 = Self.u()
        #expect(try logs.enable(v, size: Self.size))
        #expect(try !logs.enable(v, size: Self.size), "enabling twice keeps the log")
        try Self.write(logs, v, blocks: [1, 2])
        try logs.linkSnapshot(vdi: v, snapshot: s1, size: Self.size)
        try Self.write(logs, v, blocks: [5])
        try logs.linkSnapshot(vdi: v, snapshot: s2, size: Self.size)
        try Self.write(logs, v, blocks: [7, 900])
        try logs.linkSnapshot(vdi: v, snapshot: s3, size: Self.size)

        #expect(try logs.header(s1).parent == nil && logs.header(s1).child == s2)
        #expect(try logs.header(s2).parent == s1 && logs.header(s2).child == s3)
        #expect(try logs.header(s3).parent == s2 && logs.header(s3).child == v)
        #expect(try logs.header(v).parent == s3 && logs.header(v).child == nil)

        #expect(Self.blocks(try logs.changedBlocks(from: s1, to: s2).bitmap) == [5])
        #expect(Self.blocks(try logs.changedBlocks(from: s1, to: s3).bitmap) == [5, 7, 900])
        #expect(Self.blocks(try logs.changedBlocks(from: s2, to: s3).bitmap) == [7, 900])
        #expect(throws: CBTError.unrelated(s2, s1)) { try logs.changedBlocks(from: s2, to: s1) }
        #expect(throws: CBTError.unrelated(s2, s2)) { try logs.changedBlocks(from: s2, to: s2) }

        // Deleting s2 merges its blocks into s3's: s1..s3 unchanged, links close the gap.
        try logs.remove(s2)
        #expect(!logs.exists(s2))
        #expect(try logs.header(s1).child == s3 && logs.header(s3).parent == s1)
        #expect(Self.blocks(try logs.changedBlocks(from: s1, to: s3).bitmap) == [5, 7, 900])

        // Disabling the VDI cuts the chain after s3.
        try logs.disable(v)
        #expect(try !logs.exists(v) && logs.header(s3).child == nil)
    }

    @Test func inconsistentLogOnTheWayIsReported() throws {
        let d = try Dir(), logs = d.logs
        let v = Self.u(), s1 = Self.u(), s2 = Self.u()
        try logs.enable(v, size: Self.size)
        try logs.linkSnapshot(vdi: v, snapshot: s1, size: Self.size)
        // A datapath killed while active: the log stays inconsistent.
        let t = try #require(try CBTTracker.open(logs, vdi: v))
        t.mark(offset: 0, length: 4096)
        try t.persist()
        try logs.linkSnapshot(vdi: v, snapshot: s2, size: Self.size)
        #expect(throws: CBTError.inconsistent(s2)) { try logs.changedBlocks(from: s1, to: s2) }
        #expect(CBTError.inconsistent(s2).code.code == 459)
    }

    @Test func resizeGrowsAndListSpansSizes() throws {
        let d = try Dir(), logs = d.logs
        let v = Self.u(), s1 = Self.u(), s2 = Self.u(), s3 = Self.u()
        try logs.enable(v, size: Self.size)
        try logs.linkSnapshot(vdi: v, snapshot: s1, size: Self.size)
        try Self.write(logs, v, blocks: [3])
        try logs.linkSnapshot(vdi: v, snapshot: s2, size: Self.size)
        try logs.grow(v, toSize: 2 * Self.size)
        #expect(try logs.header(v).size == 2 * Self.size)
        try Self.write(logs, v, blocks: [1500])
        try logs.linkSnapshot(vdi: v, snapshot: s3, size: 2 * Self.size)
        let r = try logs.changedBlocks(from: s1, to: s3)
        #expect(r.size == 2 * Self.size && r.bitmap.bytes.count == 256)
        #expect(Self.blocks(r.bitmap) == [3, 1500])
    }

    /// Every state `linkSnapshot` passes through, finished by running it again or undone by
    /// `unlinkSnapshot`: the links and files end as after a whole link, or as before it.
    @Test(arguments: [0, 1, 2, 3])
    func interruptedLinkFinishesOrUndoes(_ stop: Int) throws {
        for undo in [false, true] {
            let d = try Dir(), logs = d.logs
            let v = Self.u(), s1 = Self.u(), s2 = Self.u()
            try logs.enable(v, size: Self.size)
            try logs.linkSnapshot(vdi: v, snapshot: s1, size: Self.size)
            try Self.write(logs, v, blocks: [4])
            let before = try Data(contentsOf: URL(fileURLWithPath: d.path + "/" + logs.name(v)))
            let beforeS1 = try logs.header(s1)
            // Reproduce the state after step `stop` of a link to s2.
            if stop >= 1 { try logs.container.rename(logs.name(v), to: logs.name(s2)) }
            if stop >= 2 { try logs.update(s1) { $0.child = s2 } }
            if stop >= 3 { try logs.create(v, header: CBTLogHeader(parent: s2, consistent: true, size: Self.size)) }
            if undo {
                try logs.unlinkSnapshot(vdi: v, snapshot: s2)
                #expect(!logs.exists(s2))
                #expect(try Data(contentsOf: URL(fileURLWithPath: d.path + "/" + logs.name(v))) == before)
                #expect(try logs.header(s1) == beforeS1)
            } else {
                try logs.linkSnapshot(vdi: v, snapshot: s2, size: Self.size)
                #expect(try logs.header(s1).child == s2 && logs.header(s2).child == v && logs.header(v).parent == s2)
                #expect(Self.blocks(try logs.changedBlocks(from: s1, to: s2).bitmap) == [4])
            }
        }
    }
}
