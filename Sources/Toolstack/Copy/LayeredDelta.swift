import LibNBD

/// Where a source and a base that share images (a snapshot of the source, an older copy on its
/// chain) can differ, from their chains rather than their contents: given the layers of both
/// (the footer uuids each datapath has open, leaf first), only the chunks where one of them
/// reads from an image the other's chain does not hold (`qemu:allocation-depth`) can differ;
/// everywhere else both read the same shared image. The layers are asked for before and after
/// the depth maps: a chain that changed meanwhile (the collector coalesced, a snapshot was
/// taken) gives no answer, and the caller compares contents instead.
struct LayeredDelta {
    /// The layers of the source's and the base's open chains, leaf first.
    let layers: @Sendable () throws -> (source: [String], base: [String])

    /// The chunks of `chunkSize` bytes of `[0, size)` that may differ between the exports
    /// `source` and `base` are connected to (asking for `qemu:allocation-depth`), and the basis
    /// to report (`layers <above source> <above base>`); nil when that cannot be told (layers
    /// unknown or changing, no image in common, a server without `qemu:allocation-depth`).
    func chunks(source: NBDClient, base: NBDClient, size: Int64, chunkSize: Int64) throws(VDICopyError)
        -> (chunks: Set<Int64>, basis: String)? {
        guard let before = try? layers(), let above = Self.layersAboveCommon(before) else { return nil }
        var chunks = Set<Int64>()
        for (client, limit) in [(source, above.source), (base, above.base)] {
            let map: [(offset: Int64, length: Int64, depth: UInt32)]?
            do { map = try client.allocationDepth(offset: 0, length: size) } catch { throw .nbd(error) }
            guard let map else { return nil }
            chunks.formUnion(NBDClient.chunks(touching: map.filter { $0.depth >= 1 && $0.depth <= limit }.map { ($0.offset, $0.length) },
                                              chunkSize: chunkSize))
        }
        guard let after = try? layers(), after == before else { return nil }
        return (chunks, "layers \(above.source) \(above.base)")
    }

    /// How many images of each chain lie above the images both share (nil when either is
    /// unknown or they share none).
    static func layersAboveCommon(_ l: (source: [String], base: [String])) -> (source: UInt32, base: UInt32)? {
        var common = 0
        while common < min(l.source.count, l.base.count),
              l.source[l.source.count - 1 - common] == l.base[l.base.count - 1 - common] { common += 1 }
        guard common > 0 else { return nil }
        return (UInt32(l.source.count - common), UInt32(l.base.count - common))
    }
}
