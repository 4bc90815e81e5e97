/// The VDIs of an SR as the collector sees them: parents, children and chain depths, and the
/// three kinds of work it finds there (Python SM `cleanup.py`, reference §4.3–4.5).
public struct VDITree: Sendable {
    /// Every VDI by uuid.
    public let vdis: [String: VDIState]
    /// Children of each VDI, sorted.
    public let children: [String: [String]]

    /// The tree of `vdis` (parents missing from the map are treated as roots' parents: ignored).
    public init(_ vdis: [String: VDIState]) {
        self.vdis = vdis
        var c: [String: [String]] = [:]
        for v in vdis.values { if let p = v.parent, vdis[p] != nil { c[p, default: []].append(v.uuid) } }
        children = c.mapValues { $0.sorted() }
    }

    /// Children of `uuid`.
    public func children(of uuid: String) -> [String] { children[uuid] ?? [] }

    /// `uuid` and every VDI below it.
    public func subtree(_ uuid: String) -> [String] {
        [uuid] + children(of: uuid).flatMap { subtree($0) }
    }

    /// The leaves at or below `uuid`.
    public func leaves(below uuid: String) -> [String] { subtree(uuid).filter { children(of: $0).isEmpty } }

    /// Images from `uuid` up to its root (1 for a root).
    public func depth(_ uuid: String) -> Int {
        var d = 0
        var seen: Set<String> = []
        var cur: String? = uuid
        while let u = cur, let v = vdis[u], seen.insert(u).inserted { d += 1; cur = v.parent }
        return d
    }

    /// The root above `uuid`.
    public func root(of uuid: String) -> String {
        var cur = uuid
        var seen: Set<String> = [uuid]
        while let p = vdis[cur]?.parent, vdis[p] != nil, seen.insert(p).inserted { cur = p }
        return cur
    }

    /// Height of the tree that holds `uuid` (its longest chain).
    public func treeHeight(of uuid: String) -> Int { subtree(root(of: uuid)).map { depth($0) }.max() ?? 0 }

    /// Garbage: hidden VDIs nothing needs, i.e. hidden leaves, and nodes whose children are all
    /// garbage (removed leaves first). Never a visible VDI, never one in `keep`.
    public func garbage(keep: Set<String> = []) -> [String] {
        var removed: Set<String> = []
        var order: [String] = []
        var changed = true
        while changed {
            changed = false
            for (u, v) in vdis.sorted(by: { $0.key < $1.key }) where v.hidden && !removed.contains(u) && !keep.contains(u) {
                if children(of: u).allSatisfy({ removed.contains($0) }) {
                    removed.insert(u); order.append(u); changed = true
                }
            }
        }
        return order
    }

    /// Hidden inner nodes that are their hidden parent's only child: merged into the parent, their
    /// children relinked to it. The tallest trees first.
    public func coalesceCandidates() -> [String] {
        vdis.values.filter { v in
            guard v.hidden, !children(of: v.uuid).isEmpty, let p = v.parent, let pv = vdis[p] else { return false }
            return pv.hidden && children(of: p) == [v.uuid]
        }
        .map(\.uuid)
        .sorted(by: tallestFirst)
    }

    /// Visible leaves that are their hidden parent's only child: merged into the parent, which
    /// then takes the leaf's name. The tallest trees first.
    public func leafCoalesceCandidates() -> [String] {
        vdis.values.filter { v in
            guard !v.hidden, children(of: v.uuid).isEmpty, let p = v.parent, let pv = vdis[p] else { return false }
            return pv.hidden && children(of: p) == [v.uuid]
        }
        .map(\.uuid)
        .sorted(by: tallestFirst)
    }

    /// Orders candidates: taller tree first, then deeper, then by uuid.
    func tallestFirst(_ a: String, _ b: String) -> Bool {
        let (ha, hb) = (treeHeight(of: a), treeHeight(of: b))
        if ha != hb { return ha > hb }
        let (da, db) = (depth(a), depth(b))
        if da != db { return da > db }
        return a < b
    }
}
