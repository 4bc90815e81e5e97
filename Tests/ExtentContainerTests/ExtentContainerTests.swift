import Foundation
import SMCore
import Testing
import TestContainers
import VHD

/// The LV-like test container on its own: extent allocation, resize, rename, tags, journals,
/// the crash safety of its table, and VHDs made in it passing the engine's check.
@Suite struct ExtentContainerTests {
    /// A group of `mib` MiB in a fresh temporary file, removed by `cleanup`.
    struct Group {
        let backing: String
        let container: ExtentContainer

        init(mib: UInt64 = 64) throws {
            backing = NSTemporaryDirectory() + "extent-\(UUID().uuidString.prefix(8)).img"
            try ExtentGroup.format(backing, name: "VG_test", size: mib << 20)
            container = try ExtentContainer(backing: backing)
        }

        func reopened() throws -> ExtentContainer { try ExtentContainer(backing: backing) }
        func cleanup() { unlink(backing) }
    }

    static let mib: UInt64 = 1 << 20

    static func bytes(_ count: Int, seed: UInt64) -> [UInt8] {
        var x = seed &* 0x9E37_79B9_7F4A_7C15 | 1
        return (0..<count).map { _ in x ^= x << 13; x ^= x >> 7; x ^= x << 17; return UInt8(truncatingIfNeeded: x) }
    }

    @Test func allocatesWholeExtentsAndRefusesWhenFull() throws {
        let g = try Group(mib: 64)
        defer { g.cleanup() }
        let c = g.container
        #expect(try c.capacity().size == 60 * Self.mib, "15 extents for volumes, one for the table")
        #expect(try c.freeSpace() == 60 * Self.mib)
        let s = try c.create("a", size: 5 * Self.mib)
        #expect(s.size == 8 * Self.mib && s.isBlockDevice)
        #expect(try c.utilisation(of: "a") == 8 * Self.mib)
        #expect(try c.freeSpace() == 52 * Self.mib)
        #expect(try c.create("b", size: 0).size == 4 * Self.mib, "an empty volume still takes one extent")
        #expect(throws: VHDError.self) { try c.create("a", size: 1) }
        #expect(throws: VHDError.self) { try c.create("huge", size: 49 * Self.mib) }
        #expect(try c.list() == ["a", "b"], "a refused create leaves nothing behind")
        // No holes: a store neither discards nor reports unallocated bytes.
        #expect(try s.discard(offset: 0, count: 4096) == false)
        #expect(s.unallocatedBytes(in: 0..<s.size) == 0)
        #expect(!(s is any DescriptorStore))
        try c.remove("a")
        #expect(try c.freeSpace() == 56 * Self.mib)
        #expect(!c.exists("a"))
        #expect(throws: VHDError.self) { try c.remove("a") }
    }

    @Test func aVolumeSpreadOverSeveralRunsReadsBackWhatWasWritten() throws {
        let g = try Group(mib: 64)
        defer { g.cleanup() }
        let c = g.container
        for n in ["a", "b", "c"] { _ = try c.create(n, size: 8 * Self.mib) }
        try c.remove("b")
        let d = try c.create("d", size: 16 * Self.mib)
        #expect(try #require(c.group.table.volumes["d"]).runs.count == 2, "the hole left by b, then the space after c")
        let data = Self.bytes(Int(d.size), seed: 7)
        try d.write(data, at: 0)
        #expect(try d.read(count: data.count, at: 0) == data)
        #expect(try g.reopened().open("d", writable: false).read(count: data.count, at: 0) == data)
        // Unaligned, across the boundary between the two runs.
        let across = Self.bytes(12345, seed: 8)
        try d.write(across, at: 8 * Self.mib - 5000)
        #expect(try d.read(count: across.count, at: 8 * Self.mib - 5000) == across)
        #expect(throws: VHDError.self) { try d.write([1], at: d.size) }
        #expect(throws: VHDError.self) { try d.read(count: 2, at: d.size - 1) }
    }

    @Test func resizeGrowsAndShrinksInWholeExtentsAndOpenStoresFollow() throws {
        let g = try Group()
        defer { g.cleanup() }
        let c = g.container
        let s = try c.create("v", size: 4 * Self.mib)
        let data = Self.bytes(4 << 20, seed: 1)
        try s.write(data, at: 0)
        #expect(throws: VHDError.self) { try s.write([1, 2], at: s.size - 1) }
        try c.resize("v", to: 9 * Self.mib)
        #expect(s.size == 12 * Self.mib, "an open store sees the new size")
        #expect(try s.read(count: data.count, at: 0) == data)
        #expect(try s.read(count: 512, at: s.size - 512) == [UInt8](repeating: 0, count: 512), "the new last sector is zeroed")
        try s.write([9], at: s.size - 1)
        try c.resize("v", to: 4 * Self.mib)
        #expect(try c.utilisation(of: "v") == 4 * Self.mib)
        #expect(try s.read(count: data.count, at: 0) == data)
        #expect(try c.freeSpace() == 56 * Self.mib)
        #expect(throws: VHDError.self) { try c.resize("v", to: 100 * Self.mib) }
        #expect(try c.utilisation(of: "v") == 4 * Self.mib, "a refused resize changes nothing")
    }

    @Test func renameIsAtomicReplacesTheTargetAndOpenStoresFollowTheData() throws {
        let g = try Group()
        defer { g.cleanup() }
        let c = g.container
        let a = try c.create("VHD-a", size: 1)
        _ = try c.create("VHD-b", size: 1)
        try c.setTags(["x"], of: "VHD-a")
        let free = try c.freeSpace()
        try c.rename("VHD-a", to: "VHD-b")
        #expect(try c.list() == ["VHD-b"])
        #expect(try c.freeSpace() == free + 4 * Self.mib, "the replaced volume's extent is free")
        #expect(try c.tags(of: "VHD-b") == ["x"], "tags go with the volume")
        try a.write([1, 2, 3], at: 0)
        #expect(try c.open("VHD-b", writable: false).read(count: 3, at: 0) == [1, 2, 3])
        #expect(c.provider.exists("/VG_test/VHD-b") && !c.provider.exists("/VG_test/VHD-a"))
        #expect(c.path(of: "VHD-b") == "/VG_test/VHD-b")
        #expect(try c.provider.list("/VG_test") == ["VHD-b"])
        try c.provider.rename("/VG_test/VHD-b", to: "/VG_test/VHD-c")
        #expect(try g.reopened().list() == ["VHD-c"], "the rename is committed")
    }

    @Test func tagsAreKeptPerVolumeAndSurviveReopening() throws {
        let g = try Group()
        defer { g.cleanup() }
        let c = g.container
        _ = try c.create("v", size: 1)
        #expect(try c.tags(of: "v").isEmpty)
        try c.setTags(["activation:rw", "hidden"], of: "v")
        #expect(try g.reopened().tags(of: "v") == ["activation:rw", "hidden"])
        try c.setTags([], of: "v")
        #expect(try c.tags(of: "v").isEmpty)
        #expect(throws: VHDError.self) { try c.setTags(["x"], of: "missing") }
    }

    @Test func journalsLiveInExtentsAndAreChecked() throws {
        let g = try Group()
        defer { g.cleanup() }
        let c = g.container
        let big = Self.bytes(5 << 20, seed: 3)
        try c.writeJournal("resize_x", big)
        try c.writeJournal("snapshot_y", Array("{}".utf8))
        #expect(try c.freeSpace() == 60 * Self.mib - 12 * Self.mib, "two extents and one")
        #expect(try g.reopened().journals() == ["resize_x": big, "snapshot_y": Array("{}".utf8)])
        try c.writeJournal("resize_x", [1])
        #expect(try c.journal("resize_x") == [1])
        #expect(try c.freeSpace() == 60 * Self.mib - 8 * Self.mib, "the replaced entry's extents are free")
        #expect(try c.list().isEmpty, "journals are not volumes")
        try c.removeJournal("resize_x")
        try c.removeJournal("resize_x")
        #expect(try c.journal("resize_x") == nil)
        // A damaged entry is an error, not silently other bytes.
        let run = try #require(c.group.table.journals["snapshot_y"]?.runs.first)
        let fd = open(g.backing, O_RDWR)
        _ = pwrite(fd, "[]", 2, off_t(run.start * c.extentSize))
        close(fd)
        #expect(throws: VHDError.self) { try c.journal("snapshot_y") }
    }

    // MARK: - Crash safety of the table

    /// Garbles `count` bytes of slot `index` (its header or its payload) in the backing file.
    static func garble(_ backing: String, slot index: Int, at offset: UInt64, count: Int = 16) {
        let fd = open(backing, O_RDWR)
        let junk = [UInt8](repeating: 0xA5, count: count)
        _ = junk.withUnsafeBytes { pwrite(fd, $0.baseAddress, count, off_t(ExtentTableSlots.offset(of: index, extentSize: 4 << 20) + offset)) }
        close(fd)
    }

    @Test func aGarbledNewestSlotLeavesThePreviousTable() throws {
        let g = try Group()
        defer { g.cleanup() }
        let c = g.container
        _ = try c.create("old", size: 1)
        let before = c.group.table
        let seq = c.group.currentSequence
        _ = try c.create("new", size: 1)
        #expect(c.group.currentSequence == seq + 1)
        // The newest slot's payload garbled (a torn write of the last commit).
        Self.garble(g.backing, slot: ExtentTableSlots.index(for: seq + 1), at: ExtentTableSlots.headerBytes + 20)
        let after = try g.reopened()
        #expect(after.group.table == before, "the previous commit wins")
        #expect(after.group.currentSequence == seq)
        #expect(try after.list() == ["old"])
        // The next commit goes to the damaged slot and wins again.
        _ = try after.create("again", size: 1)
        #expect(try g.reopened().list() == ["again", "old"])
    }

    @Test func aTruncatedNextSlotIsIgnored() throws {
        let g = try Group()
        defer { g.cleanup() }
        let c = g.container
        _ = try c.create("v", size: 1)
        let seq = c.group.currentSequence
        // What a commit killed half-way leaves: a header claiming seq+1, then a payload cut short.
        var header = [UInt8](repeating: 0, count: 512)
        header.replaceSubrange(0..<8, with: Array("SWSMXTB1".utf8))
        header[8] = UInt8(truncatingIfNeeded: seq + 1)
        header[16] = 200
        let fd = open(g.backing, O_RDWR)
        let at = ExtentTableSlots.offset(of: ExtentTableSlots.index(for: seq + 1), extentSize: c.extentSize)
        _ = header.withUnsafeBytes { pwrite(fd, $0.baseAddress, 512, off_t(at)) }
        _ = [UInt8](repeating: 0x7b, count: 50).withUnsafeBytes { pwrite(fd, $0.baseAddress, 50, off_t(at + 512)) }
        close(fd)
        let after = try g.reopened()
        #expect(after.group.currentSequence == seq)
        #expect(try after.list() == ["v"])
        // A garbled header magic in the other slot too: nothing valid is left, and that is an error.
        Self.garble(g.backing, slot: ExtentTableSlots.index(for: seq), at: 0)
        #expect(throws: VHDError.self) { try g.reopened() }
    }

    /// Overlapping or out-of-range extents in a table.
    static func layoutProblems(_ t: ExtentTable) -> [String] {
        var owner: [UInt64: String] = [:]
        var out: [String] = []
        let all = t.volumes.map { ($0.key, $0.value.runs) } + t.journals.map { ("journal " + $0.key, $0.value.runs) }
        for (name, runs) in all {
            for r in runs {
                for e in r.start..<(r.start + r.count) {
                    if e == 0 || e >= t.extentCount { out.append("\(name) has extent \(e)") }
                    if let o = owner[e] { out.append("extent \(e) in \(o) and \(name)") }
                    owner[e] = name
                }
            }
        }
        return out
    }

    /// A process killed (SIGKILL) at a random moment while it commits table after table: the
    /// group opens with the last table it committed or the one it was writing, never a mix.
    @Test(arguments: [1, 2, 3, 5, 8, 13, 21, 34, 55, 89])
    func aProcessKilledWhileCommittingLeavesTheOldOrTheNewTable(_ delayMillis: Int) async throws {
        let g = try Group(mib: 256)
        defer { g.cleanup() }
        let log = g.backing + ".log"
        defer { unlink(log) }
        await #expect(processExitsWith: .signal(SIGKILL)) { [backing = g.backing as String, log = log as String, delayMillis = delayMillis as Int] in
            let c = try ExtentContainer(backing: backing)
            Thread.detachNewThread {
                usleep(useconds_t(delayMillis * 1000))
                kill(getpid(), SIGKILL)
            }
            let fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
            var i = 0
            while true {
                let name = "v\(i % 7)"
                if c.exists(name) {
                    if i % 3 == 0 { try c.remove(name) } else { try c.resize(name, to: UInt64(1 + i % 5) << 22) }
                } else {
                    _ = try c.create(name, size: UInt64(1 + i % 3) << 22)
                    try c.setTags(["round:\(i)"], of: name)
                }
                try c.writeJournal("j\(i % 2)", Array(repeating: UInt8(i & 0xff), count: 100 + i))
                // Logged after the commits: every logged sequence number was committed.
                let line = "\(c.group.currentSequence)\n"
                _ = write(fd, line, line.utf8.count)
                i += 1
            }
        }
        let logged = (try? String(contentsOfFile: log, encoding: .utf8))?.split(separator: "\n").compactMap { UInt64($0) }.last ?? 1
        let c = try g.reopened()
        let seq = c.group.currentSequence
        #expect(seq >= logged && seq <= logged + 3, "committed \(logged), found \(seq)")
        print("ExtentContainerTests: killed after \(delayMillis) ms: \(logged) tables logged as committed, \(seq) found")
        #expect(Self.layoutProblems(c.group.table).isEmpty, "\(Self.layoutProblems(c.group.table))")
        // Journals read back whole (their checksums hold) and the group takes new commits.
        for (name, bytes) in try c.journals() { #expect(bytes.count >= 100 && Set(bytes).count == 1, "\(name)") }
        _ = try c.create("after", size: 1)
        #expect(try g.reopened().exists("after"))
    }

    @Test func anotherProcessesCommitIsSeen() throws {
        let g = try Group()
        defer { g.cleanup() }
        let c = g.container
        let s = try c.create("v", size: 1)
        let other = try g.reopened()
        try other.resize("v", to: 8 * Self.mib)
        #expect(try c.utilisation(of: "v") == 8 * Self.mib, "the table is reread before each operation")
        #expect(s.size == 8 * Self.mib)
        try other.remove("v")
        #expect(!c.exists("v"))
        #expect(throws: VHDError.self) { try s.read(count: 1, at: 0) }
    }

    // MARK: - VHDs in it

    @Test func vhdsMadeInItPassCheckAndInflateAndDeflate() throws {
        let g = try Group(mib: 256)
        defer { g.cleanup() }
        let c = g.container
        let repo = VHDRepository(container: c)
        let uuid = VDIName.newUUID()
        _ = try repo.create(uuid: uuid, size: 40 * Self.mib)
        #expect(c.exists("VHD-" + uuid))
        // Created and inflated for 40 MiB: 20 blocks of 2 MiB with their bitmaps, in extents.
        let inflated = try c.utilisation(of: "VHD-" + uuid)
        #expect(inflated == c.roundedToExtents(InflatedSize.estimate(virtualSize: 40 * Self.mib)))
        #expect(inflated >= 40 * Self.mib + 20 * 4096 && inflated % c.extentSize == 0)
        // A quarter written: the base a snapshot makes of it deflates to that.
        let data = Self.bytes(10 << 20, seed: 11)
        let chain = try VHDChain(path: repo.path(uuid), provider: c.provider, writable: true)
        try chain.write(data, at: 0)
        try chain.flush()
        #expect(Check.run(path: repo.path(uuid), provider: c.provider).flatMap(\.problems).isEmpty)
        let snap = try repo.snapshot(uuid: uuid, copyUUID: nil)
        let base = try #require(snap.base?.uuid)
        let baseImage = try repo.image(base)
        #expect(try c.utilisation(of: "VHD-" + base) == c.roundedToExtents(baseImage.endOfData + 512), "the base is deflated")
        #expect(try c.utilisation(of: "VHD-" + base) == 12 * Self.mib, "five blocks and metadata in three extents")
        #expect(try c.utilisation(of: "VHD-" + uuid) == inflated, "the new leaf is inflated")
        #expect(c.sizingLog.contains("deflate VHD-\(base) \(c.roundedToExtents(baseImage.endOfData + 512))"))
        for u in [uuid, base] { #expect(Check.run(path: repo.path(u), provider: c.provider).flatMap(\.problems).isEmpty, "\(u)") }
        #expect(try VHDChain(path: repo.path(uuid), provider: c.provider).read(count: data.count, at: 0) == data)
        // The parent locator names the volume in the group.
        #expect(try repo.state(uuid).parent == base)
    }

    @Test func aVHDThatWasNotInflatedCannotGrowPastItsVolume() throws {
        let g = try Group()
        defer { g.cleanup() }
        let c = g.container
        try Create.dynamic(at: c.path(of: "VHD-x"), size: 32 * Self.mib, provider: c.provider)
        #expect(try c.utilisation(of: "VHD-x") == 4 * Self.mib, "metadata only: one extent")
        #expect(Check.run(path: c.path(of: "VHD-x"), provider: c.provider).flatMap(\.problems).isEmpty)
        let chain = try VHDChain(path: c.path(of: "VHD-x"), provider: c.provider, writable: true)
        #expect(throws: VHDError.self) { try chain.write([UInt8](repeating: 1, count: 8 << 20), at: 0) }
        try c.prepareForGrowth("VHD-x", virtualSize: 32 * Self.mib)
        let grown = try VHDChain(path: c.path(of: "VHD-x"), provider: c.provider, writable: true)
        try grown.write([UInt8](repeating: 1, count: 32 << 20), at: 0)
        try grown.flush()
        #expect(Check.run(path: c.path(of: "VHD-x"), provider: c.provider).flatMap(\.problems).isEmpty)
    }
}
