import Foundation

/// The SR metadata the Python SM keeps in an LVHD SR's `MGT` volume (`srmetadata.py`'s
/// `LVMMetadataHandler`), laid out byte for byte as it does: 512-byte sectors padded with
/// spaces; sector 0 the header `XSSM:<length, left-justified in 10>:1:2`, the length being the
/// bytes in use; sectors 1–3 the SR (`<?xml version="1.0" ?><uuid/><allocation/>`, then
/// `<name_label/>`, then `<name_description/>`, each cut to fit its sector); then two sectors
/// per VDI slot (`<vdi><name_label/><name_description/>` and the other fields with
/// `<deleted/>` then `</vdi>`). A deleted VDI keeps its slot, marked `<deleted>1</deleted>`,
/// until a new VDI reuses it.
public struct LVHDMetadata: Equatable, Sendable {
    /// The SR's own record (sectors 1–3).
    public struct SRInfo: Equatable, Sendable {
        /// The SR uuid.
        public var uuid: String
        /// The SR's name (cut to 487 escaped bytes when written).
        public var nameLabel: String
        /// The SR's description (cut to 475 escaped bytes when written).
        public var nameDescription: String
        /// `thick` or `thin`.
        public var allocation: String

        /// A record of these values.
        public init(uuid: String, nameLabel: String = "", nameDescription: String = "", allocation: String = "thick") {
            self.uuid = uuid
            self.nameLabel = nameLabel
            self.nameDescription = nameDescription
            self.allocation = allocation
        }
    }

    /// One VDI slot (two sectors).
    public struct VDIEntry: Equatable, Sendable {
        /// The VDI uuid.
        public var uuid: String
        /// The VDI's name (with the description, cut to fit one sector when written).
        public var nameLabel: String
        /// The VDI's description.
        public var nameDescription: String
        /// Whether the VDI is a snapshot.
        public var isASnapshot: Bool
        /// The uuid of the VDI it is a snapshot of, or empty.
        public var snapshotOf: String
        /// When the snapshot was taken (xapi's text), or empty.
        public var snapshotTime: String
        /// xapi's VDI type: `user`, `system`, `metadata`, ...
        public var type: String
        /// `vhd` or `aio` (raw).
        public var vdiType: String
        /// Whether the VDI is read-only.
        public var readOnly: Bool
        /// Whether xapi manages the VDI.
        public var managed: Bool
        /// The pool whose metadata the VDI holds, or empty.
        public var metadataOfPool: String
        /// Whether the slot is free: its VDI was deleted.
        public var deleted: Bool

        /// An entry of these values.
        public init(uuid: String, nameLabel: String = "", nameDescription: String = "", isASnapshot: Bool = false,
                    snapshotOf: String = "", snapshotTime: String = "", type: String = "user", vdiType: String = "vhd",
                    readOnly: Bool = false, managed: Bool = true, metadataOfPool: String = "", deleted: Bool = false) {
            self.uuid = uuid
            self.nameLabel = nameLabel
            self.nameDescription = nameDescription
            self.isASnapshot = isASnapshot
            self.snapshotOf = snapshotOf
            self.snapshotTime = snapshotTime
            self.type = type
            self.vdiType = vdiType
            self.readOnly = readOnly
            self.managed = managed
            self.metadataOfPool = metadataOfPool
            self.deleted = deleted
        }
    }

    /// Bytes per sector.
    public static let sectorSize = 512
    /// Sectors before the first VDI slot: the header and the SR's three.
    public static let srInfoSectors = 4
    /// Sectors per VDI slot.
    public static let vdiSectors = 2
    /// The header's first field.
    public static let magic = "XSSM"
    /// The format version the Python SM writes (`MD_MAJOR`, `MD_MINOR`).
    public static let version = (major: 1, minor: 2)
    /// What sector 1 starts with.
    static let xmlHeader = #"<?xml version="1.0" ?>"#
    /// Escaped bytes a VDI's name and description may take together before they are cut
    /// (`MAX_VDI_NAME_LABEL_DESC_LENGTH`: the sector less its tags).
    static let vdiNamesLimit = sectorSize - 2 * "name_label".count - 2 * "name_description".count - "vdi".count - 12

    /// The SR's record.
    public var sr: SRInfo
    /// The VDI slots in volume order, deleted ones included.
    public var slots: [VDIEntry]

    /// Metadata for `sr` with a slot per VDI.
    public init(sr: SRInfo, vdis: [VDIEntry] = []) {
        self.sr = sr
        slots = vdis
    }

    /// The VDIs: the slots not deleted.
    public var vdis: [VDIEntry] { slots.filter { !$0.deleted } }

    /// The VDI `uuid`, nil without one.
    public func vdi(_ uuid: String) -> VDIEntry? { slots.last { !$0.deleted && $0.uuid == uuid } }

    /// Bytes in use: the header's length field.
    public var length: Int { (Self.srInfoSectors + Self.vdiSectors * slots.count) * Self.sectorSize }

    /// Replaces VDI `vdi.uuid` in its slot; a new VDI takes the first deleted slot, else a new
    /// slot at the end (as the Python SM's `updateVdi` and `addVdi`).
    public mutating func update(_ vdi: VDIEntry) {
        var vdi = vdi
        vdi.deleted = false
        if let i = slots.lastIndex(where: { !$0.deleted && $0.uuid == vdi.uuid }) ?? slots.firstIndex(where: \.deleted) {
            slots[i] = vdi
        } else {
            slots.append(vdi)
        }
    }

    /// Marks VDI `uuid` deleted, keeping its slot for reuse; the last slot is given up instead
    /// (as the Python SM's `deleteVdi` shortens the length). Nothing without that VDI.
    public mutating func remove(uuid: String) {
        guard let i = slots.lastIndex(where: { !$0.deleted && $0.uuid == uuid }) else { return }
        if i == slots.count - 1 { slots.removeLast() } else { slots[i].deleted = true }
    }

    // MARK: Writing

    /// The bytes of the volume's first `length` bytes.
    public func encode() throws -> [UInt8] {
        var out = Self.header(length: length)
        out += try Self.sector(Self.xmlHeader + Self.field("uuid", sr.uuid) + Self.field("allocation", sr.allocation))
        out += try Self.sector(Self.field("name_label", Self.cut(LVHDMetadataXML.escape(sr.nameLabel), tag: "name_label"), escaped: true))
        out += try Self.sector(Self.field("name_description", Self.cut(LVHDMetadataXML.escape(sr.nameDescription), tag: "name_description"), escaped: true))
        for vdi in slots { out += try Self.encode(vdi) }
        return out
    }

    /// Sector 0 for `length` bytes in use.
    static func header(length: Int) -> [UInt8] {
        let count = String(length)
        let field = count + String(repeating: " ", count: max(0, 10 - count.count))
        return padded(Array("\(magic):\(field):\(version.major):\(version.minor)".utf8))
    }

    /// A VDI slot's two sectors.
    static func encode(_ vdi: VDIEntry) throws -> [UInt8] {
        var label = LVHDMetadataXML.escape(vdi.nameLabel), description = LVHDMetadataXML.escape(vdi.nameDescription)
        if label.utf8.count + description.utf8.count > vdiNamesLimit {
            let half = vdiNamesLimit / 2
            label = truncated(label, toBytes: half)
            description = truncated(description, toBytes: half)
        }
        let names = "<vdi>" + field("name_label", label, escaped: true) + field("name_description", description, escaped: true)
        let flag = { (b: Bool) in b ? "1" : "0" }
        let fields = field("uuid", vdi.uuid) + field("is_a_snapshot", flag(vdi.isASnapshot)) + field("snapshot_of", vdi.snapshotOf)
            + field("snapshot_time", vdi.snapshotTime) + field("type", vdi.type) + field("vdi_type", vdi.vdiType)
            + field("read_only", flag(vdi.readOnly)) + field("managed", flag(vdi.managed))
            + field("metadata_of_pool", vdi.metadataOfPool) + field("deleted", flag(vdi.deleted)) + "</vdi>"
        return try sector(names) + sector(fields, what: "VDI \(vdi.uuid)'s fields")
    }

    /// `<tag>value</tag>`, the value escaped unless it already is.
    static func field(_ tag: String, _ value: String, escaped: Bool = false) -> String {
        LVHDMetadataXML.element(tag, escaped ? value : LVHDMetadataXML.escape(value))
    }

    /// An escaped SR name or description cut so that `<tag>value</tag>` fits one sector.
    static func cut(_ escaped: String, tag: String) -> String {
        truncated(escaped, toBytes: sectorSize - 2 * tag.utf8.count - 5)
    }

    /// The longest prefix of `escaped` of at most `limit` UTF-8 bytes that ends neither inside
    /// a character nor inside an entity (`&...;`).
    static func truncated(_ escaped: String, toBytes limit: Int) -> String {
        guard escaped.utf8.count > limit else { return escaped }
        var used = 0, safe = escaped.unicodeScalars.startIndex, inEntity = false
        for i in escaped.unicodeScalars.indices {
            let c = escaped.unicodeScalars[i]
            used += UTF8.width(c)
            if used > limit { break }
            if c == "&" { inEntity = true } else if c == ";" { inEntity = false }
            if !inEntity { safe = escaped.unicodeScalars.index(after: i) }
        }
        return String(escaped.unicodeScalars[..<safe])
    }

    /// `text` as one sector padded with spaces; `metadataTooLarge` when it is longer.
    static func sector(_ text: String, what: String = "an SR field") throws -> [UInt8] {
        let bytes = Array(text.utf8)
        guard bytes.count <= sectorSize else { throw LVHDError.metadataTooLarge("\(what): \(bytes.count) bytes, more than a sector") }
        return padded(bytes)
    }

    /// `bytes` padded with spaces to a whole sector.
    static func padded(_ bytes: [UInt8]) -> [UInt8] {
        bytes + [UInt8](repeating: 0x20, count: (sectorSize - bytes.count % sectorSize) % sectorSize)
    }

    // MARK: Reading

    /// The length a header sector records; nil for a sector of zeros (never written).
    /// `corruptMetadata` for anything but the Python SM's header with a length of whole slots.
    public static func length(ofHeader sector: [UInt8]) throws -> Int? {
        guard sector.count >= sectorSize else { throw LVHDError.corruptMetadata("header truncated to \(sector.count) bytes") }
        let sector = Array(sector.prefix(sectorSize))
        if sector.allSatisfy({ $0 == 0 }) { return nil }
        guard let text = String(bytes: sector, encoding: .utf8) else { throw LVHDError.corruptMetadata("header is not UTF-8") }
        let fields = text.trimmingCharacters(in: .whitespaces).split(separator: ":", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespaces) }
        guard fields.count == 4, fields[0] == magic else { throw LVHDError.corruptMetadata("bad header") }
        guard fields[2] == String(version.major), fields[3] == String(version.minor) else {
            throw LVHDError.corruptMetadata("unsupported version \(fields[2]).\(fields[3])")
        }
        let first = srInfoSectors * sectorSize, slot = vdiSectors * sectorSize
        guard fields[1].count <= 10, let length = Int(fields[1]), length >= first, (length - first) % slot == 0 else {
            throw LVHDError.corruptMetadata("bad length \(fields[1].prefix(16))")
        }
        return length
    }

    /// The metadata of a volume's bytes (at least the header's length of them).
    public init(decoding bytes: [UInt8]) throws {
        guard let length = try Self.length(ofHeader: bytes) else { throw LVHDError.corruptMetadata("empty header") }
        guard length <= bytes.count else {
            throw LVHDError.corruptMetadata("length \(length) past the \(bytes.count) bytes of the volume")
        }
        let sr = Self.withoutNULs(bytes[Self.sectorSize..<(Self.srInfoSectors * Self.sectorSize)])
        let xmlHeader = Array(Self.xmlHeader.utf8)
        guard sr.starts(with: xmlHeader) else { throw LVHDError.corruptMetadata("sector 1 lacks the XML declaration") }
        let info = try LVHDMetadataXML.parse(Array(sr.dropFirst(xmlHeader.count)))
        let root = LVHDMetadataXML.Element(name: "", text: "", children: info)
        guard let uuid = root.child("uuid"), !uuid.isEmpty else { throw LVHDError.corruptMetadata("SR record has no uuid") }
        self.sr = SRInfo(uuid: uuid, nameLabel: root.child("name_label") ?? "",
                         nameDescription: root.child("name_description") ?? "", allocation: root.child("allocation") ?? "")
        let slot = Self.vdiSectors * Self.sectorSize
        slots = try stride(from: Self.srInfoSectors * Self.sectorSize, to: length, by: slot).map { at in
            try Self.decodeSlot(Self.withoutNULs(bytes[at..<(at + slot)]), at: at)
        }
    }

    /// The entry in a slot's bytes.
    static func decodeSlot(_ bytes: [UInt8], at offset: Int) throws -> VDIEntry {
        let elements = try LVHDMetadataXML.parse(bytes)
        guard elements.count == 1, let vdi = elements.first, vdi.name == "vdi" else {
            throw LVHDError.corruptMetadata("slot at byte \(offset) holds no <vdi>")
        }
        guard let uuid = vdi.child("uuid"), !uuid.isEmpty else { throw LVHDError.corruptMetadata("slot at byte \(offset) has no uuid") }
        func flag(_ tag: String) throws -> Bool {
            switch vdi.child(tag)?.lowercased() ?? "" {
            case "1", "true": return true
            case "0", "false", "": return false
            case let other: throw LVHDError.corruptMetadata("slot at byte \(offset): \(tag) is \(other.prefix(16))")
            }
        }
        return VDIEntry(uuid: uuid, nameLabel: vdi.child("name_label") ?? "", nameDescription: vdi.child("name_description") ?? "",
                        isASnapshot: try flag("is_a_snapshot"), snapshotOf: vdi.child("snapshot_of") ?? "",
                        snapshotTime: vdi.child("snapshot_time") ?? "", type: vdi.child("type") ?? "",
                        vdiType: vdi.child("vdi_type") ?? "", readOnly: try flag("read_only"), managed: try flag("managed"),
                        metadataOfPool: vdi.child("metadata_of_pool") ?? "", deleted: try flag("deleted"))
    }

    /// The bytes without NULs (the Python SM drops them before parsing).
    static func withoutNULs(_ bytes: ArraySlice<UInt8>) -> [UInt8] { bytes.filter { $0 != 0 } }
}
