import Foundation
import SMCore
import Testing
import VHD

/// The collector checks free space before it merges, on a real ext4 SR (a loop device): a merge
/// the SR has no room for is skipped (chain, contents and records as they were, no journal, the
/// reason in the output, the status and the log) while the rest of the work goes on; once space
/// is freed, the next run does it.
@Suite(.enabled(if: LoopDevice.unavailableReason == nil, "\(LoopDevice.unavailableReason ?? "")"))
struct GCSpaceTests {
    static let block = 2 << 20
    /// What one block takes when appended to a parent: bitmap and alignment gap, 2 MiB of data.
    static let blockStride: UInt64 = (2 << 20) + 4096

    /// Fills whole blocks `blocks` of VDI `uuid` with a pattern (as a guest would, through the library).
    func fill(_ sr: TestSR, _ uuid: String, blocks: Range<Int>, seed: UInt8) throws {
        let chain = try VHDChain(path: sr.path(uuid), provider: sr.provider, writable: true)
        for b in blocks {
            let bytes = (0..<Self.block).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ b) ^ seed }
            try chain.write(bytes, at: UInt64(b * Self.block))
        }
        try chain.flush()
    }

    /// Writes a file of `bytes` real (not sparse) bytes at `path`, synced.
    func writeFiller(_ path: String, bytes: UInt64) throws {
        #expect(FileManager.default.createFile(atPath: path, contents: nil))
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        let chunk = Data(repeating: 0x5a, count: 1 << 20)
        var left = bytes
        while left > 0 {
            let n = Int(min(left, UInt64(chunk.count)))
            try handle.write(contentsOf: chunk.prefix(n))
            left -= UInt64(n)
        }
        try handle.synchronize()
    }

    @Test func aMergeWithoutRoomIsSkippedUntilSpaceIsFreed() throws {
        let sr = try TestSR(mode: .device, imageSize: 256 << 20)
        defer { sr.cleanup() }
        try sr.createAndAttach()
        func snapshot(_ vdi: String) throws -> String { try sr.vdiInfo(try sr.value(try sr.call("vdi_snapshot", vdi: vdi))) }
        func delete(_ vdi: String) throws { try sr.value(try sr.call("vdi_delete", vdi: vdi)) }

        // Node coalesce: v's base holds blocks 0..<4, the hidden node above it blocks 4..<14,
        // which the base lacks: merging them takes 10 blocks.
        let v = try sr.createVDI(size: 64 << 20)
        try fill(sr, v, blocks: 0..<4, seed: 1)
        let s1 = try snapshot(v)
        let vBase = try #require(try sr.disk()[v]?.parent)
        try fill(sr, v, blocks: 4..<14, seed: 2)
        let s2 = try snapshot(v)
        let node = try #require(try sr.disk()[v]?.parent)
        try fill(sr, v, blocks: 14..<15, seed: 3)
        try delete(s1)
        // Leaf coalesce: u holds 5 blocks its base lacks (small enough for one final merge).
        let u = try sr.createVDI(size: 32 << 20)
        try fill(sr, u, blocks: 0..<3, seed: 4)
        let us = try snapshot(u)
        let uBase = try #require(try sr.disk()[u]?.parent)
        try fill(sr, u, blocks: 3..<8, seed: 5)
        try delete(us)
        try sr.value(try sr.call("sr_scan"))

        let nodeNeeds = 10 * Self.blockStride, leafNeeds = 5 * Self.blockStride
        let container = try DirectoryContainer(directory: sr.srDirectory)
        let margin = GCOptions().spaceMargin(srSize: try container.capacity().size)
        // Room for the leaf's merge, not for the node's.
        let filler = sr.srDirectory + "/filler"
        try writeFiller(filler, bytes: try container.freeSpace() - (margin + (15 << 20)))
        let free = try container.freeSpace()
        #expect(free >= margin + leafNeeds + (2 << 20) && free + (2 << 20) <= margin + nodeNeeds,
                "free \(free), margin \(margin)")

        let before = try sr.disk()
        let hashes = try Dictionary(uniqueKeysWithValues: [v, s2, u].map { ($0, try sr.contentHash($0)) })
        let first = try sr.run(arguments: ["gc", "--sr", sr.srUUID])
        #expect(first.exitStatus == 0, "\(first)")
        #expect(first.stdout.contains("removed 0, coalesced 0, leaf-coalesced 1"), "\(first.stdout)")
        #expect(first.stdout.contains("skipped \(node): not enough free space: the merge needs \(nodeNeeds) bytes"), "\(first.stdout)")
        #expect(first.stdout.contains("but the SR has \(free) bytes"), "\(first.stdout)")

        // The node's chain is as it was: same files, same links, same contents; no journal left.
        let after = try sr.disk()
        for x in [vBase, node, v, s2] { #expect(after[x] == before[x], "\(x) changed") }
        #expect(after[u]?.parent == nil && after[uBase] == nil, "the leaf that fitted was merged")
        for (x, hash) in hashes { #expect(try sr.contentHash(x) == hash, "VDI \(x) reads back differently") }
        #expect(sr.strayFiles() == ["filler"], "\(sr.strayFiles())")
        #expect(sr.treeProblems().isEmpty, "\(sr.treeProblems())")
        let control = GCControl(run: RunDirectory(root: sr.runDir), sr: sr.srUUID)
        #expect(control.status()?.skippedForSpace[node]?.contains("needs \(nodeNeeds) bytes") == true, "\(String(describing: control.status()))")
        let status = try sr.run(arguments: ["gc", "--sr", sr.srUUID, "--status"])
        #expect(status.stdout.contains("skipped for space: 1") && status.stdout.contains("skipped \(node): not enough free space"),
                "\(status.stdout)")
        let log = (try? String(contentsOfFile: sr.runDir + "/SMlog", encoding: .utf8)) ?? ""
        #expect(log.contains("\(node) not coalesced: not enough free space"), "SMlog: \(log.suffix(2000))")

        // Space freed: the next run merges the node, contents unchanged. ext4 gives a removed
        // file's blocks back when its journal commits: sync, and wait until statfs shows them.
        try FileManager.default.removeItem(atPath: filler)
        sync()
        let deadline = Date().addingTimeInterval(15)
        while try container.freeSpace() < margin + nodeNeeds + (2 << 20) && Date() < deadline { usleep(200_000) }
        let second = try sr.run(arguments: ["gc", "--sr", sr.srUUID])
        #expect(second.exitStatus == 0, "\(second)")
        #expect(second.stdout.contains("coalesced 1") && !second.stdout.contains("skipped"), "\(second.stdout)")
        let done = try sr.disk()
        #expect(Set(done.keys) == [vBase, v, s2, u], "\(done.keys.sorted())")
        #expect(done[v]?.parent == vBase && done[s2]?.parent == vBase)
        for (x, hash) in hashes { #expect(try sr.contentHash(x) == hash, "VDI \(x) reads back differently") }
        #expect(sr.treeProblems().isEmpty && sr.strayFiles().isEmpty && sr.recordProblems().isEmpty,
                "\(sr.treeProblems()) \(sr.strayFiles()) \(sr.recordProblems())")
        #expect(control.status()?.skippedForSpace.isEmpty == true)
    }
}
