import SMCore
import VHD

/// LVHD's sizing policy: a writable leaf is inflated to `calcSizeVHDLV` of its virtual size
/// (more if its own layout needs it), a read-only node deflated to its data and made read-only.
/// The VHD's footer is written at the LV's new end before the commit that changes its size, so
/// the LV ends with a footer at every point and no journal is needed.
extension LVHDContainer {
    /// `bytes` rounded up to whole extents.
    public func roundedToExtents(_ bytes: UInt64) -> UInt64 { LVHDSize.roundUp(max(bytes, 1), extentSize) }

    /// Bytes of free extents a volume needs to hold the VHD: a writable leaf its inflated size,
    /// a read-only node its image; less what the LV already has.
    public func spaceToHold(imageBytes: UInt64, virtualSize: UInt64, in name: String?, writable: Bool) throws -> UInt64 {
        var bytes = imageBytes
        if writable {
            bytes = max(bytes, LVHDSize.inflated(virtualSize: virtualSize))
            if let name, let image = try? VHDImage(store: try open(name, writable: false), path: path(of: name), writable: false) {
                bytes = max(bytes, LVHDSize.inflated(image, virtualSize: virtualSize))
            }
        }
        let needed = roundedToExtents(bytes)
        let have = try name.map { try utilisation(of: $0) } ?? 0
        return needed > have ? needed - have : 0
    }

    /// Inflates the LV to what its VHD can reach at `virtualSize` bytes and makes it writable.
    /// Fails with `LVHDError.outOfSpace` (nothing changed) when the VG lacks the extents. On a
    /// thin SR (`isInactiveLeaf` set), a leaf no host has active only gets what its metadata
    /// needs: it is inflated when it is activated.
    public func prepareForGrowth(_ name: String, virtualSize: UInt64) throws {
        let image = try VHDImage(store: try open(name, writable: true), path: path(of: name), writable: true)
        let thin = try isInactiveLeaf.map { inactive in try !isReadOnly(name) && inactive(name) } ?? false
        let target = roundedToExtents(thin ? LVHDSize.deflated(image, virtualSize: virtualSize)
                                           : LVHDSize.inflated(image, virtualSize: virtualSize))
        let current = try utilisation(of: name)
        try resize(name, to: max(target, current), lastSector: image.footer.encoded(), readOnly: false)
    }

    /// Deflates a read-only VHD's LV to its data and footer (rounded up to extents) and sets the
    /// LV read-only, in one commit after the footer is at the new end.
    public func settleReadOnly(_ name: String) throws { try deflate(name, readOnly: true) }

    /// Deflates a leaf's LV to its data and footer (`allocation=thin` while no host has it
    /// active); it stays writable, and is inflated again before it is activated.
    public func deflateLeaf(_ name: String) throws { try deflate(name, readOnly: false) }

    /// The footer is written at the new end first, then one commit gives back the extents past
    /// it (and sets the LV's read-only flag to `readOnly`).
    private func deflate(_ name: String, readOnly: Bool) throws {
        let image = try VHDImage(store: try open(name, writable: true), path: path(of: name), writable: true)
        let target = roundedToExtents(LVHDSize.deflated(image))
        if target < image.store.size {
            try image.store.write(image.footer.encoded(), at: target - 512)
            try image.store.sync()
        }
        try resize(name, to: min(target, image.store.size), lastSector: nil, readOnly: readOnly)
    }
}
