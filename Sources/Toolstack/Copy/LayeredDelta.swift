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

    /// The chunks of `chunkSize` bytes of `[0, size)` that may differ between `source` and
    /// `base`, and the basis to report (`layers <above source> <above base>`); nil when that
    /// cannot be told (layers unknown or changing, no image in common, a server without
    /// `qemu:allocation-depth`).
    func chunks(source: NBDExport, base: NBDExport, size: Int64, chunkSize: Int64) throws(VDICopyError)
        -> (chunks: Set<Int64>, basis: String)? {
        guard let before = try? layers(), let above = Self.layersAboveCommon(before) else { return nil }
        var chunks = Set<Int64>()
        for (export, limit) in [(source, above.source), (base, above.base)] {
            let client = try VDICopier.connect(export, allocationDepth: true)
            let map: [(offset: Int64, length: Int64, depth: UInt32)]?
            do { map = try client.allocationDepth(offset: 0, length: size) } catch { throw .nbd(error) }
            guard let map else { return nil }
            for e in map where e.depth >= 1 && e.depth <= limit && e.length > 0 {
                var i = e.offset / chunkSize
                while i * chunkSize < e.offset + e.length {
                    chunks.insert(i)
                    i += 1
                }
            }
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
