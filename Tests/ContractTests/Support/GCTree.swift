import Foundation
import SMCore
import Testing

/// An SR holding one of each kind of collector work, made through the repository:
/// - garbage: VDI `w` snapshotted, then both deleted: a hidden base with no child;
/// - coalesce: VDI `v` written, snapshotted (`s1`), written, snapshotted (`s2`), written, `s1`
///   deleted: `node` (`s2`'s base) is its hidden parent's only child, with children `v` and `s2`;
/// - leaf coalesce: VDI `u` written, snapshotted, written, the snapshot deleted: `u` is its
///   hidden parent's only child.
/// The content of every visible VDI is hashed before the collector runs.
struct GCTree {
    let v: String, s2: String, u: String
    /// The hidden VHDs: the garbage, the coalesce candidate and the parents.
    let garbage: String, node: String, vBase: String, uBase: String
    /// Content hash of each visible VDI.
    let hashes: [String: UInt64]

    init(_ repo: VHDRepository) throws {
        func create(_ mib: UInt64) throws -> String {
            let u = VDIName.newUUID()
            _ = try repo.create(uuid: u, size: mib << 20)
            return u
        }
        func snapshot(_ vdi: String) throws -> String {
            let copy = VDIName.newUUID()
            _ = try repo.snapshot(uuid: vdi, copyUUID: copy)
            return copy
        }
        func parent(_ vdi: String) throws -> String { try #require(try repo.state(vdi).parent) }

        let w = try create(16)
        try Contents.writePattern(repo, w, seed: 1)
        let ws = try snapshot(w)
        garbage = try parent(w)
        try repo.delete(uuid: w)
        try repo.delete(uuid: ws)

        v = try create(32)
        try Contents.writePattern(repo, v, seed: 2)
        let s1 = try snapshot(v)
        vBase = try parent(v)
        try Contents.writePattern(repo, v, seed: 3)
        s2 = try snapshot(v)
        node = try parent(v)
        try Contents.writePattern(repo, v, seed: 4)
        try repo.delete(uuid: s1)

        u = try create(24)
        try Contents.writePattern(repo, u, seed: 5)
        let us = try snapshot(u)
        uBase = try parent(u)
        try Contents.writePattern(repo, u, seed: 6)
        try repo.delete(uuid: us)

        var h: [String: UInt64] = [:]
        for x in [v, s2, u] { h[x] = try Contents.hash(repo, x) }
        hashes = h
        let tree = try repo.scan()
        #expect(Set(tree.keys) == [garbage, vBase, node, v, s2, uBase, u], "the scenario's tree: \(tree.keys.sorted())")
        #expect(tree[node]?.parent == vBase && tree[v]?.parent == node && tree[s2]?.parent == node && tree[u]?.parent == uBase)
    }

    /// Problems of the SR once the collector is done: the shortest tree (`vBase` under `v` and
    /// `s2`, `u` alone, renamed from its base), every hash unchanged, nothing left behind, every
    /// VHD sound.
    func finalProblems(_ repo: VHDRepository) throws -> [String] {
        var problems = try Contents.checkProblems(repo) + Contents.leftovers(repo).map { "left behind: \($0)" }
        let tree = try repo.scan()
        if Set(tree.keys) != [vBase, v, s2, u] { problems.append("VHDs after the collector: \(tree.keys.sorted())") }
        if tree[v]?.parent != vBase || tree[s2]?.parent != vBase { problems.append("v and s2 are not children of their base") }
        if tree[u]?.parent != nil || tree[u]?.hidden != false { problems.append("u was not merged into its base") }
        problems += try hashProblems(repo)
        return problems
    }

    /// The visible VDIs that do not read back as they did.
    func hashProblems(_ repo: VHDRepository) throws -> [String] {
        hashes.compactMap { x, hash in (try? Contents.hash(repo, x)) == hash ? nil : "VDI \(x) reads back differently" }
    }
}
