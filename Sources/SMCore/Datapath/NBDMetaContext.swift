/// A metadata context the datapath's BLOCK_STATUS describes, with its id on every connection.
public enum NBDMetaContext: UInt32, Sendable, CaseIterable {
    /// `base:allocation`: holes and zeros (NBD.stateHole, NBD.stateZero).
    case baseAllocation = 1
    /// `qemu:allocation-depth`: which image of the chain a range reads from (0: none, 1: the
    /// leaf, 2: its parent, ...), as qemu-nbd reports it for a backing chain.
    case allocationDepth = 2

    /// The context's name.
    public var name: String {
        switch self {
        case .baseAllocation: NBD.baseAllocation
        case .allocationDepth: "qemu:allocation-depth"
        }
    }

    /// The contexts a LIST_META_CONTEXT with `queries` names: all for no query, those of a
    /// namespace for `"ns:"`, and those named exactly.
    public static func listed(by queries: [String]) -> [NBDMetaContext] {
        guard !queries.isEmpty else { return allCases }
        return allCases.filter { c in queries.contains { q in q == c.name || (q.hasSuffix(":") && c.name.hasPrefix(q)) } }
    }

    /// The contexts a SET_META_CONTEXT with `queries` selects: those named exactly.
    public static func selected(by queries: [String]) -> [NBDMetaContext] {
        allCases.filter { queries.contains($0.name) }
    }
}
