import Foundation
import SMCore
import Testing
import TestContainers
import VHD

/// The collector against every container: garbage removed, a hidden node coalesced into its
/// parent and its children relinked, a leaf coalesced into its parent; contents unchanged,
/// images sound, and where volumes are inflated, the parent inflated before each merge and
/// read-only nodes deflated after.
@Suite(.serialized) struct ContractCollectorTests {
    @Test(arguments: ContainerKind.allCases)
    func garbageCoalesceRelinkAndLeafCoalesce(_ kind: ContainerKind) throws {
        let sr = try ContractSR(kind)
        defer { sr.cleanup() }
        let repo = try sr.repository()
        let tree = try GCTree(repo)
        try expectSized(repo)
        let gcRepo = try sr.repository()
        let report = try sr.collector(gcRepo).collect()
        #expect(report.removed == [tree.garbage], "\(report)")
        #expect(report.coalesced == [tree.node], "\(report)")
        #expect(report.leafCoalesced == [tree.u], "\(report)")
        #expect(report.skippedForSpace.isEmpty && report.gaveUp.isEmpty)
        let problems = try tree.finalProblems(try sr.repository())
        #expect(problems.isEmpty, "\(problems)")
        try expectSized(repo)
        if let c = gcRepo.container as? ExtentContainer {
            // The merge into vBase inflated it first and deflated it after; uBase was inflated
            // before it took u's blocks (and stays so: it is u now, a writable leaf).
            let log = c.sizingLog
            let inflateV = log.firstIndex { $0.hasPrefix("inflate VHD-\(tree.vBase) ") }
            let deflateV = log.lastIndex { $0.hasPrefix("deflate VHD-\(tree.vBase) ") }
            #expect(inflateV != nil && deflateV != nil && inflateV! < deflateV!, "\(log)")
            #expect(log.contains { $0.hasPrefix("inflate VHD-\(tree.uBase) ") }, "\(log)")
        }
        // The merged leaf takes writes again.
        let more = Contents.pattern(3 << 20, seed: 77)
        try Contents.write(repo, tree.u, more, at: 20 << 20)
        #expect(try Contents.read(repo, tree.u, count: more.count, at: 20 << 20) == more)
        try expectChecked(repo)
        // Nothing more to do.
        let again = try sr.collector().collect()
        #expect(again.isEmpty, "\(again)")
    }

    /// A leaf resized above its base since the snapshot: the base grows first (its BAT too,
    /// through the repository's journaled resize; inflated for it on LVs), then takes the leaf.
    @Test(arguments: ContainerKind.allCases)
    func aLeafResizedAboveItsBaseIsCoalesced(_ kind: ContainerKind) throws {
        let sr = try ContractSR(kind)
        defer { sr.cleanup() }
        let repo = try sr.repository()
        let u = VDIName.newUUID()
        _ = try repo.create(uuid: u, size: 8 << 20)
        try Contents.write(repo, u, Contents.pattern(8 << 20, seed: 31), at: 0)
        let snap = try repo.snapshot(uuid: u, copyUUID: VDIName.newUUID())
        let base = try #require(snap.base?.uuid)
        try repo.delete(uuid: try #require(snap.copy?.uuid))
        _ = try repo.resize(uuid: u, size: 200 << 20)
        try Contents.write(repo, u, Contents.pattern(4 << 20, seed: 32), at: 190 << 20)
        try Contents.write(repo, u, Contents.pattern(1 << 20, seed: 33), at: 3 << 20)
        let before = try Contents.hash(repo, u)
        let report = try sr.collector().collect()
        #expect(report.leafCoalesced == [u], "\(report)")
        let tree = try repo.scan()
        #expect(Set(tree.keys) == [u] && tree[base] == nil && tree[u]?.virtualSize == 200 << 20, "\(tree)")
        #expect(try Contents.hash(repo, u) == before)
        try expectChecked(repo)
        try expectSized(repo)
        try expectNoLeftovers(repo)
    }

    /// A merge the container cannot hold (with the collector's margin) is not started: the
    /// candidate is skipped for space and nothing changes; with room again it goes through.
    /// Not on NFS: filling the test server's one export would starve every other SR on it.
    @Test(arguments: ContainerKind.allCases.filter { $0 != .nfs })
    func aMergeThatDoesNotFitIsSkipped(_ kind: ContainerKind) throws {
        let sr = try ContractSR(kind)
        defer { sr.cleanup() }
        let repo = try sr.repository()
        let tree = try GCTree(repo)
        var options = GCOptions()
        options.leafCoalesce = false
        // Filler leaves less free space than the margin alone.
        let c = repo.container
        let filler = "filler"
        let free = try c.freeSpace()
        let leave = options.spaceMargin(srSize: try c.capacity().size) / 2
        do {
            // Closed again at once: an open file keeps its blocks after it is removed.
            let store = try c.create(filler, size: free - leave)
            if !store.isBlockDevice { try fill(store, bytes: free - leave) }
        }
        let report = try sr.collector(options: options).collect()
        #expect(report.skippedForSpace[tree.node] != nil, "\(report)")
        #expect(report.coalesced.isEmpty)
        #expect(try repo.scan()[tree.node] != nil)
        #expect(try tree.hashProblems(repo).isEmpty)
        try c.remove(filler)
        let retried = try sr.collector(options: options).collect()
        let freeNow = try c.freeSpace()
        #expect(retried.coalesced == [tree.node], "\(retried), free \(freeNow)")
        #expect(try tree.hashProblems(repo).isEmpty)
        try expectChecked(repo)
        try expectSized(repo)
    }

    /// Takes `bytes` of a file system for `store` (a file): preallocated, not a hole.
    func fill(_ store: any BlockStore, bytes: UInt64) throws {
        guard let file = store as? FileStore else { return }
        #expect(posix_fallocate(file.descriptor.rawValue, 0, off_t(bytes)) == 0)
    }
}
