import LVM
import VHD

/// The SR metadata in the `MGT` LV, in the Python SM's format (`LVHDMetadata`), so either SM
/// finds the SR's name, allocation and VDI records the other wrote. Writes go through the LV's
/// store: the slots first, then the header that says how many are in use, then one sync.
extension LVHDContainer {
    /// The metadata in `MGT`; nil when its header was never written (all zeros).
    public func readMetadata() throws -> LVHDMetadata? {
        let store = try group.store(of: LVHDLayout.managementVolume, in: try group.current(), writable: false)
        let header = try store.read(count: LVHDMetadata.sectorSize, at: 0)
        guard let length = try LVHDMetadata.length(ofHeader: header) else { return nil }
        guard UInt64(length) <= store.size else {
            throw LVHDError.corruptMetadata("length \(length) past the \(store.size) bytes of the volume")
        }
        return try LVHDMetadata(decoding: try store.read(count: length, at: 0))
    }

    /// Replaces the metadata in `MGT` with `metadata`; `metadataTooLarge` (nothing written)
    /// when it does not fit the LV.
    public func writeMetadata(_ metadata: LVHDMetadata) throws {
        let bytes = try metadata.encode()
        let store = try group.store(of: LVHDLayout.managementVolume, in: try group.current(), writable: true)
        guard UInt64(bytes.count) <= store.size else {
            throw LVHDError.metadataTooLarge("\(metadata.slots.count) VDI slots need \(bytes.count) bytes, \(LVHDLayout.managementVolume) has \(store.size)")
        }
        // The slots, then the header that counts them, then one SYNCHRONIZE CACHE. The records
        // are a copy of xapi's: a crash that leaves the header without its slots makes MGT
        // unreadable until the next sr_attach writes it anew (as the Python SM's unsynced writes).
        let sector = LVHDMetadata.sectorSize
        try store.write(Array(bytes[sector...]), at: UInt64(sector))
        try store.write(Array(bytes[..<sector]), at: 0)
        try store.sync()
    }

    /// Adds VDI `vdi.uuid` (in the first deleted slot, else a new one) or replaces its entry in
    /// place; `corruptMetadata` when `MGT` holds no metadata yet.
    public func updateVDI(_ vdi: LVHDMetadata.VDIEntry) throws {
        var metadata = try existingMetadata()
        metadata.update(vdi)
        try writeMetadata(metadata)
    }

    /// Marks VDI `uuid` deleted in `MGT` (its slot kept for reuse, the last one given up);
    /// nothing without that VDI.
    public func removeVDI(uuid: String) throws {
        var metadata = try existingMetadata()
        guard metadata.vdi(uuid) != nil else { return }
        metadata.remove(uuid: uuid)
        try writeMetadata(metadata)
    }

    /// The metadata in `MGT`, `corruptMetadata` when there is none.
    private func existingMetadata() throws -> LVHDMetadata {
        guard let metadata = try readMetadata() else { throw LVHDError.corruptMetadata("no SR metadata written yet") }
        return metadata
    }
}
