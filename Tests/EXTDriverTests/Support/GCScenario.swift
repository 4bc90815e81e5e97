import Foundation
import Testing

/// An SR holding one of each kind of collector work, made through the executable as xapi would:
/// - garbage: VDI `w` snapshotted, then both deleted, leaves a hidden base with no child;
/// - coalesce: VDI `v` written, snapshotted (`s1`), written, snapshotted (`s2`), written, then
///   `s1` deleted: `s2`'s base is its hidden parent's only child, with two children (`v`, `s2`);
/// - leaf coalesce: VDI `u` written, snapshotted, written, snapshot deleted: `u` is its hidden
///   parent's only child.
/// The content of every visible VDI is hashed before the collector runs.
struct GCScenario {
    let sr: TestSR
    let v: String, s2: String, u: String
    /// Hidden VHDs before the collector: the garbage, the coalesce candidate and their parents.
    let garbage: String, node: String, vBase: String, uBase: String
    /// Content hash of each visible VDI.
    let hashes: [String: UInt64]

    init(_ sr: TestSR) throws {
        self.sr = sr
        try sr.createAndAttach()
        func snapshot(_ vdi: String) throws -> String { try sr.vdiInfo(try sr.value(try sr.call("vdi_snapshot", vdi: vdi))) }
        func delete(_ vdi: String) throws { try sr.value(try sr.call("vdi_delete", vdi: vdi)) }

        let w = try sr.createVDI(size: 16 << 20)
        try sr.writePattern(w, seed: 1)
        let ws = try snapshot(w)
        let wBase = try #require(try sr.disk()[w]?.parent)
        try delete(w)
        try delete(ws)

        let v = try sr.createVDI(size: 32 << 20)
        try sr.writePattern(v, seed: 2)
        let s1 = try snapshot(v)
        let vBase = try #require(try sr.disk()[v]?.parent)
        try sr.writePattern(v, seed: 3)
        let s2 = try snapshot(v)
        let node = try #require(try sr.disk()[v]?.parent)
        try sr.writePattern(v, seed: 4)
        try delete(s1)

        let u = try sr.createVDI(size: 24 << 20)
        try sr.writePattern(u, seed: 5)
        let us = try snapshot(u)
        let uBase = try #require(try sr.disk()[u]?.parent)
        try sr.writePattern(u, seed: 6)
        try delete(us)
        try sr.value(try sr.call("sr_scan"))

        self.v = v; self.s2 = s2; self.u = u
        garbage = wBase; self.node = node; self.vBase = vBase; self.uBase = uBase
        var h: [String: UInt64] = [:]
        for x in [v, s2, u] { h[x] = try sr.contentHash(x) }
        hashes = h
        let disk = try sr.disk()
        #expect(Set(disk.keys) == [wBase, vBase, node, v, s2, uBase, u], "the scenario's tree: \(disk.keys.sorted())")
        #expect(disk[node]?.parent == vBase && disk[v]?.parent == node && disk[s2]?.parent == node && disk[u]?.parent == uBase)
    }

    /// `smdriver gc --sr` (foreground), with `fault` armed when given.
    func collect(_ extra: [String] = [], fault: String? = nil, timeout: Double = 120) throws -> SmdriverResult {
        try sr.run(arguments: ["gc", "--sr", sr.srUUID] + extra, fault: fault, timeout: timeout)
    }

    /// Problems of the SR once the collector is done: the shortest tree (`vBase` under `v` and
    /// `s2`, `u` alone, renamed from its base), every VHD sound, every hash unchanged, nothing
    /// left behind, records matching the disk.
    func finalProblems() throws -> [String] {
        var problems = sr.treeProblems() + sr.strayFiles().map { "stray file \($0)" }
        let disk = try sr.disk()
        if Set(disk.keys) != [vBase, v, s2, u] { problems.append("VHDs after the collector: \(disk.keys.sorted())") }
        if disk[v]?.parent != vBase || disk[s2]?.parent != vBase { problems.append("v and s2 are not children of their base") }
        if disk[u]?.parent != nil || disk[u]?.hidden != false { problems.append("u was not merged into its base") }
        for (x, hash) in hashes where (try? sr.contentHash(x)) != hash { problems.append("VDI \(x) reads back differently") }
        problems += sr.recordProblems()
        return problems
    }
}
