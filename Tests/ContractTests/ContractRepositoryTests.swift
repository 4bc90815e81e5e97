import Foundation
import SMCore
import Testing
import TestContainers
import VHD

/// The VHD repository against every container: each VDI operation, its contents read back
/// through the VHD chain, every image passing the engine's check, and (where volumes are
/// inflated) the sizes the sizing policy promises.
@Suite(.serialized) struct ContractRepositoryTests {
    static let mib: UInt64 = 1 << 20

    @Test(arguments: ContainerKind.allCases)
    func createWriteScanAndDelete(_ kind: ContainerKind) throws {
        let sr = try ContractSR(kind)
        defer { sr.cleanup() }
        if kind == .directory && LoopFileSystem.unavailableReason == nil {
            let fs = try #require(sr.loop)
            let mounts = try String(contentsOfFile: "/proc/mounts", encoding: .utf8)
            #expect(mounts.contains("\(fs.device) \(fs.mountPoint) ext4 "), "the directory is on ext4 on a loop device")
            #expect(sr.location.hasPrefix(fs.mountPoint + "/"))
        }
        let repo = try sr.repository()
        let a = VDIName.newUUID(), b = VDIName.newUUID()
        let sa = try repo.create(uuid: a, size: 20 * Self.mib + 1)
        #expect(sa.virtualSize == 22 * Self.mib, "rounded up to 2 MiB")
        #expect(sa.parent == nil && !sa.hidden && !sa.readOnly)
        _ = try repo.create(uuid: b, size: 8 * Self.mib)
        #expect(throws: RepositoryError.exists(a)) { try repo.create(uuid: a, size: Self.mib) }
        #expect(throws: RepositoryError.invalidName("../x")) { try repo.create(uuid: "../x", size: Self.mib) }
        #expect(throws: RepositoryError.invalidSize(3 << 40)) { try repo.create(uuid: VDIName.newUUID(), size: 3 << 40) }
        #expect(try Contents.all(repo, a) == [UInt8](repeating: 0, count: Int(22 * Self.mib)), "a new disk reads as zeros")
        let data = Contents.pattern(Int(22 * Self.mib), seed: 1)
        try Contents.write(repo, a, data, at: 0)
        // Another process (a new container instance) reads the same bytes.
        let other = try sr.repository()
        #expect(try Contents.all(other, a) == data)
        let scan = try other.scan()
        #expect(Set(scan.keys) == [a, b])
        #expect(scan[a]?.physicalUtilisation ?? 0 >= 22 * Self.mib, "a full disk occupies its data")
        #expect(scan[b]?.virtualSize == 8 * Self.mib)
        try expectChecked(repo)
        try expectSized(repo)
        try repo.delete(uuid: b)
        #expect(try Set(repo.scan().keys) == [a])
        #expect(throws: RepositoryError.missing(b)) { try repo.delete(uuid: b) }
        try expectNoLeftovers(repo)
        let nothing = try repo.recover()
        #expect(nothing.completed.isEmpty && nothing.rolledBack.isEmpty && nothing.removed.isEmpty, "nothing to recover")
    }

    @Test(arguments: ContainerKind.allCases)
    func snapshotAndCloneKeepContentsApart(_ kind: ContainerKind) throws {
        let sr = try ContractSR(kind)
        defer { sr.cleanup() }
        let repo = try sr.repository()
        let v = VDIName.newUUID()
        _ = try repo.create(uuid: v, size: 16 * Self.mib)
        try Contents.writePattern(repo, v, seed: 1)
        let before = try Contents.hash(repo, v)

        // Snapshot: the data becomes a hidden base, the VDI an empty leaf over it, the snapshot a second leaf.
        let s = VDIName.newUUID()
        let snap = try repo.snapshot(uuid: v, copyUUID: s)
        let base = try #require(snap.base?.uuid)
        #expect(snap.base?.hidden == true && snap.vdi.parent == base && snap.copy?.parent == base)
        #expect(try Contents.hash(repo, v) == before && Contents.hash(repo, s) == before)
        try expectSized(repo)
        #expect(throws: RepositoryError.hasChildren(base)) { try repo.delete(uuid: base) }
        #expect(throws: RepositoryError.hidden(base)) { try repo.snapshot(uuid: base, copyUUID: nil) }

        // Writes to the VDI after the snapshot do not reach the snapshot, and the other way round.
        try Contents.writePattern(repo, v, seed: 2)
        try Contents.writePattern(repo, s, seed: 3)
        let vNow = try Contents.hash(repo, v), sNow = try Contents.hash(repo, s)
        #expect(vNow != before && sNow != before && vNow != sNow)

        // A clone of the snapshot: same contents, its own leaf.
        let c = VDIName.newUUID()
        let clone = try repo.snapshot(uuid: s, copyUUID: c)
        #expect(try Contents.hash(repo, c) == sNow && Contents.hash(repo, s) == sNow)
        #expect(clone.base != nil)
        // A VDI with nothing new since its last snapshot adds no empty base.
        let again = try repo.snapshot(uuid: s, copyUUID: VDIName.newUUID())
        #expect(again.base == nil && again.copy?.parent == clone.base?.uuid)
        #expect(try Contents.hash(repo, v) == vNow)

        let tree = try repo.scan()
        #expect(tree.values.filter(\.hidden).count == 2)
        let readOnlyAreHidden = tree.values.filter { $0.readOnly }.allSatisfy { $0.hidden }
        #expect(readOnlyAreHidden)
        try expectChecked(repo)
        try expectSized(repo)
        try expectNoLeftovers(repo)
    }

    @Test(arguments: ContainerKind.allCases)
    func resizeWithinAndBeyondTheBAT(_ kind: ContainerKind) throws {
        let sr = try ContractSR(kind, size: 1 << 30)
        defer { sr.cleanup() }
        let repo = try sr.repository()
        let v = VDIName.newUUID()
        _ = try repo.create(uuid: v, size: 8 * Self.mib)
        let data = Contents.pattern(Int(8 * Self.mib), seed: 4)
        try Contents.write(repo, v, data, at: 0)
        #expect(throws: RepositoryError.shrink(v)) { try repo.resize(uuid: v, size: 4 * Self.mib) }
        // 8 MiB has a BAT of four entries in one sector: 520 MiB needs three, so the metadata
        // grows over the first block, which move to the end first (a journal covers the rewrite).
        // LVs get metadata for 2 TiB (vhd-util -S): there the resize only rewrites the footers.
        let firstBlock = try repo.image(v).entry(0)
        let preallocated = repo.container.fastResizeLimit > 0
        #expect((Resize.fastLimit(try repo.image(v)) < 520 * Self.mib) != preallocated)
        let grown = try repo.resize(uuid: v, size: 520 * Self.mib)
        #expect(grown.virtualSize == 520 * Self.mib)
        #expect(try repo.image(v).maxTableEntries >= 260)
        #expect((try repo.image(v).entry(0) != firstBlock) != preallocated, "the first block moved (only without preallocation)")
        #expect(try repo.container.journals().isEmpty)
        #expect(try Contents.read(repo, v, count: data.count, at: 0) == data)
        #expect(try Contents.isZero(repo, v, 8 * Self.mib..<520 * Self.mib))
        let tail = Contents.pattern(Int(8 * Self.mib), seed: 5)
        try Contents.write(repo, v, tail, at: 512 * Self.mib)
        #expect(try Contents.read(repo, v, count: tail.count, at: 512 * Self.mib) == tail)
        #expect(try Contents.read(repo, v, count: data.count, at: 0) == data)
        #expect(try repo.container.journals().isEmpty, "the resize journal is gone")
        // Within the BAT: a footer rewrite.
        let fast = try repo.resize(uuid: v, size: 520 * Self.mib + 1)
        #expect(fast.virtualSize == 522 * Self.mib)
        try expectChecked(repo)
        try expectSized(repo)
        // A snapshot's leaf resized above its base: the chain reads the base's data and zeros beyond.
        let snap = try repo.snapshot(uuid: v, copyUUID: nil)
        let base = try #require(snap.base?.uuid)
        _ = try repo.resize(uuid: v, size: 540 * Self.mib)
        #expect(try repo.state(base).virtualSize == 522 * Self.mib)
        #expect(try Contents.read(repo, v, count: tail.count, at: 512 * Self.mib) == tail)
        try Contents.write(repo, v, tail, at: 532 * Self.mib)
        #expect(try Contents.read(repo, v, count: tail.count, at: 532 * Self.mib) == tail)
        #expect(try Contents.read(repo, v, count: Int(10 * Self.mib), at: 522 * Self.mib) == [UInt8](repeating: 0, count: Int(10 * Self.mib)))
        try expectChecked(repo)
        try expectSized(repo)
    }

    @Test(arguments: ContainerKind.allCases)
    func composeAndResetLeaf(_ kind: ContainerKind) throws {
        let sr = try ContractSR(kind)
        defer { sr.cleanup() }
        let repo = try sr.repository()
        // p: a root with data; y: a leaf over a snapshot base with writes of its own.
        let p = VDIName.newUUID(), y = VDIName.newUUID()
        _ = try repo.create(uuid: p, size: 16 * Self.mib)
        let pData = Contents.pattern(Int(16 * Self.mib), seed: 6)
        try Contents.write(repo, p, pData, at: 0)
        _ = try repo.create(uuid: y, size: 16 * Self.mib)
        try Contents.write(repo, y, Contents.pattern(Int(16 * Self.mib), seed: 7), at: 0)
        _ = try repo.snapshot(uuid: y, copyUUID: nil)
        let own = Contents.pattern(3 << 20, seed: 8)
        try Contents.write(repo, y, own, at: 5 * Self.mib)
        // Compose: y's leaf now sits on p; y reads p's data under its own writes, p is hidden.
        try repo.compose(parent: p, child: y)
        var expected = pData
        expected.replaceSubrange(Int(5 * Self.mib)..<Int(8 * Self.mib), with: own)
        #expect(try Contents.all(repo, y) == expected)
        #expect(try repo.state(p).hidden && repo.state(y).parent == p)
        try expectChecked(repo)
        try expectSized(repo)        // the composed parent is read-only now: deflated

        // Reset on boot: the leaf's writes are gone, the parent's data shows through.
        try repo.resetLeaf(y)
        #expect(try Contents.all(repo, y) == pData)
        #expect(try repo.state(y).parent == p)
        try Contents.write(repo, y, own, at: 0)
        #expect(try Contents.read(repo, y, count: own.count, at: 0) == own)
        // A root resets to zeros.
        let r = VDIName.newUUID()
        _ = try repo.create(uuid: r, size: 4 * Self.mib)
        try Contents.write(repo, r, Contents.pattern(4 << 20, seed: 9), at: 0)
        try repo.resetLeaf(r)
        #expect(try Contents.all(repo, r) == [UInt8](repeating: 0, count: 4 << 20))
        try expectChecked(repo)
        try expectNoLeftovers(repo)
    }

    @Test(arguments: ContainerKind.allCases)
    func recoverRemovesTemporariesAndFinishesJournals(_ kind: ContainerKind) throws {
        let sr = try ContractSR(kind)
        defer { sr.cleanup() }
        let repo = try sr.repository()
        let c = repo.container
        let v = VDIName.newUUID()
        _ = try repo.create(uuid: v, size: 8 * Self.mib)
        try Contents.writePattern(repo, v, seed: 10)
        let before = try Contents.hash(repo, v)
        // A half-made volume and a resize journal for a VDI that no longer exists.
        let gone = VDIName.newUUID()
        _ = try c.create(c.naming.temporary(gone), size: Self.mib)
        try c.writeJournal("resize_" + gone, [1, 2, 3])
        let r = try sr.repository().recover()
        #expect(r.removed.sorted() == [c.naming.temporary(gone), "resize_" + gone].sorted(), "\(r)")
        try expectNoLeftovers(repo)
        #expect(try Contents.hash(repo, v) == before)
        // An unreadable snapshot journal is an error, not a silent loss.
        try c.writeJournal("snapshot_" + v, Array("not json".utf8))
        #expect(throws: RepositoryError.self) { try repo.recover() }
    }
}

/// A file SR upgraded across a crash in a resize: the journal an earlier release left beside the
/// image (`.journal-<uuid>`) is still replayed.
@Suite struct ContractLegacyJournalTests {
    /// A journal that stays behind, as a crash between its write and its removal leaves it.
    final class KeptJournal: MetadataJournal {
        let inner: StoreJournal
        init(_ inner: StoreJournal) { self.inner = inner }
        func write(_ bytes: [UInt8]) throws { try inner.write(bytes) }
        func read() throws -> [UInt8]? { try inner.read() }
        func remove() throws {}
    }

    @Test func legacyResizeJournalIsReplayed() throws {
        let sr = try ContractSR(.directory)
        defer { sr.cleanup() }
        let repo = try sr.repository()
        let c = repo.container
        let v = VDIName.newUUID()
        _ = try repo.create(uuid: v, size: 8 << 20)
        try Contents.writePattern(repo, v, seed: 12)
        let before = try Contents.hash(repo, v)
        // The resize grows the BAT (the journal is written), the journal is kept, and the image is
        // left with both footers disabled, as a crash during the in-place rewrite leaves it.
        let legacy = ".journal-" + v
        try Resize.run(path: c.path(of: c.naming.volume(v)), size: 520 << 20, provider: c.provider,
                       journal: KeptJournal(StoreJournal(path: c.path(of: legacy), provider: c.provider)))
        let image = try repo.image(v, writable: true)
        var poisoned = image.footer
        poisoned.disabled = true
        try image.store.write(poisoned.encoded(), at: 0)
        try image.store.write(poisoned.encoded(), at: image.store.size - 512)
        try image.store.sync()
        #expect(throws: (any Error).self, "a disabled image does not open") { _ = try repo.state(v) }
        let r = try sr.repository().recover()
        #expect(r.completed == [legacy], "\(r)")
        #expect(!c.exists(legacy))
        #expect(try repo.state(v).virtualSize == 520 << 20)
        #expect(FNV1a.hash(try Contents.read(repo, v, count: 8 << 20, at: 0)) == before)
        #expect(FNV1a.hash(try Contents.read(repo, v, count: 8 << 20, at: 512 << 20)) == FNV1a.hash([UInt8](repeating: 0, count: 8 << 20)))
        try expectChecked(repo)
    }
}
