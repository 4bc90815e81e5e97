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
        var current = from
        var merged: CBTBitmap? = nil
        var size: UInt64 = 0
        for _ in 0..<Self.maxChainLength {
            guard let next = try header(current).child, exists(next) else { break }
            current = next
            let log = try open(current)
            let h = try log.header()
            guard h.consistent else { throw CBTError.inconsistent(current) }
            let bits = try log.bitmap(h)
            if var m = merged {
                guard h.size >= size else { throw CBTError.sizeMismatch("log of \(current) covers \(h.size) bytes, \(size) before it") }
                size = h.size
                m.grow(toSize: size)
                m.formUnion(bits)
                merged = m
            } else {
                merged = bits
                size = h.size
            }
            if current == to, let m = merged { return (m, size) }
        }
        throw CBTError.unrelated(from, to)
    }
}
