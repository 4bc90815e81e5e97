import CBT

/// `vdi_list_changed_blocks`: the blocks written after snapshot `from` up to `to`, the bitmaps of
/// the logs that follow `from`'s along the child links, up to and including `to`'s, ORed.
extension CBTLogs {
    /// The longest chain of logs walked (a loop in the links ends here).
    static let maxChainLength = 4096

    /// The merged bitmap from `from` (exclusive) to `to` (inclusive) and the disk size it covers.
    /// A log marked inconsistent on the way fails (459): its bitmap may miss writes, and a
    /// full backup is needed; so do logs whose sizes shrink along the chain. `to` not reached
    /// through child links fails with 460.
    public func changedBlocks(from: String, to: String) throws -> (bitmap: CBTBitmap, size: UInt64) {
        guard from != to else { throw CBTError.unrelated(from, to) }
        guard exists(from) else { throw CBTError.noLog(from) }
        guard exists(to) else { throw CBTError.noLog(to) }
        // The path first (headers only), so that an unrelated target is 460 whatever lies beyond.
        var path: [(uuid: String, header: CBTLogHeader)] = []
        var current = from
        while current != to {
            guard path.count < Self.maxChainLength, let next = try header(current).child, exists(next) else {
                throw CBTError.unrelated(from, to)
            }
            current = next
            path.append((next, try header(next)))
        }
        var merged = CBTBitmap(size: 0)
        var size: UInt64 = 0
        for (uuid, h) in path {
            guard h.consistent else { throw CBTError.inconsistent(uuid) }
            guard h.size >= size else { throw CBTError.sizeMismatch("log of \(uuid) covers \(h.size) bytes, \(size) before it") }
            let bits = try open(uuid).bitmap(h)
            size = h.size
            merged.grow(toSize: size)
            merged.formUnion(bits)
        }
        return (merged, size)
    }
}
