/// The PV header that follows the label: PV uuid, device size, data and metadata area lists, and the
/// extension (version, `PV_EXT_USED` flag, bootloader areas).
public struct PVHeader: Equatable, Sendable {
    /// The extension flag lvm2 sets while the PV belongs to a VG.
    public static let usedFlag: UInt32 = 1

    /// The PV's identifier.
    public var uuid: LVMUUID
    /// Device size in bytes as recorded when the PV was written.
    public var deviceSize: UInt64
    /// Data areas (lvm2 writes one: offset = pe_start in bytes, size 0).
    public var dataAreas: [DiskArea]
    /// Metadata areas (offset of the mda header, size of the whole area).
    public var metadataAreas: [DiskArea]
    /// Extension version (2 for lvm2 2.03; 0 means no extension).
    public var extensionVersion: UInt32
    /// Extension flags (bit 0: `PV_EXT_USED`).
    public var extensionFlags: UInt32
    /// Bootloader areas (normally none).
    public var bootloaderAreas: [DiskArea]

    /// A header with the given fields and a version-2 extension.
    public init(uuid: LVMUUID, deviceSize: UInt64, dataAreas: [DiskArea], metadataAreas: [DiskArea],
                extensionFlags: UInt32 = usedFlag, bootloaderAreas: [DiskArea] = []) {
        self.uuid = uuid
        self.deviceSize = deviceSize
        self.dataAreas = dataAreas
        self.metadataAreas = metadataAreas
        extensionVersion = 2
        self.extensionFlags = extensionFlags
        self.bootloaderAreas = bootloaderAreas
    }

    /// Decodes the header from `sector` (the whole 512-byte label sector), starting at `offset`.
    public static func decode(_ sector: [UInt8], at offset: Int) throws -> PVHeader {
        guard offset >= 32, offset + 32 + 8 + 16 <= sector.count else { throw LVMError.invalidPVHeader("offset \(offset) out of the sector") }
        guard let uuid = LVMUUID(String(decoding: sector[offset..<offset + 32], as: UTF8.self)) else {
            throw LVMError.invalidPVHeader("uuid is not 32 valid characters")
        }
        let deviceSize = sector.le64(offset + 32)
        var cursor = offset + 40
        func list(_ what: String) throws -> [DiskArea] {
            var out: [DiskArea] = []
            while true {
                guard cursor + 16 <= sector.count else { throw LVMError.invalidPVHeader("\(what) list has no terminator") }
                let a = DiskArea(offset: sector.le64(cursor), size: sector.le64(cursor + 8))
                cursor += 16
                if a.offset == 0 && a.size == 0 { return out }
                out.append(a)
            }
        }
        let data = try list("data area")
        let meta = try list("metadata area")
        var version: UInt32 = 0, flags: UInt32 = 0, boot: [DiskArea] = []
        if cursor + 8 <= sector.count {
            version = sector.le32(cursor)
            if version != 0 {
                flags = sector.le32(cursor + 4)
                cursor += 8
                boot = try list("bootloader area")
            }
        }
        var h = PVHeader(uuid: uuid, deviceSize: deviceSize, dataAreas: data, metadataAreas: meta,
                         extensionFlags: flags, bootloaderAreas: boot)
        h.extensionVersion = version
        for a in meta + data + boot where a.offset > deviceSize && deviceSize > 0 {
            throw LVMError.invalidPVHeader("area at \(a.offset) lies past the device size \(deviceSize)")
        }
        return h
    }

    /// Encodes the header into `sector` at `offset`; throws when the lists do not fit the sector.
    public func encode(into sector: inout [UInt8], at offset: Int) throws {
        let needed = 40 + 16 * (dataAreas.count + metadataAreas.count + 2) + (extensionVersion != 0 ? 8 + 16 * (bootloaderAreas.count + 1) : 0)
        guard offset + needed <= sector.count else { throw LVMError.invalidArgument("PV header lists do not fit one sector") }
        sector.put(Array(uuid.raw.utf8), at: offset)
        sector.setLE64(deviceSize, at: offset + 32)
        var cursor = offset + 40
        func list(_ areas: [DiskArea]) {
            for a in areas + [DiskArea(offset: 0, size: 0)] {
                sector.setLE64(a.offset, at: cursor); sector.setLE64(a.size, at: cursor + 8); cursor += 16
            }
        }
        list(dataAreas)
        list(metadataAreas)
        if extensionVersion != 0 {
            sector.setLE32(extensionVersion, at: cursor); sector.setLE32(extensionFlags, at: cursor + 4); cursor += 8
            list(bootloaderAreas)
        }
    }
}
