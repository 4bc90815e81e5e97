/// One of the eight parent locator entries of a dynamic header (24 bytes).
public struct ParentLocator: Equatable, Sendable {
    /// Platform codes blktap accepts.
    public enum Code: UInt32, Sendable {
        /// Unused slot.
        case none = 0
        /// Deprecated Windows relative path.
        case wi2r = 0x5769_3272
        /// Deprecated Windows absolute path.
        case wi2k = 0x5769_326B
        /// Windows relative path, UTF-16LE.
        case w2ru = 0x5732_7275
        /// Windows absolute path, UTF-16LE (tap stores a relative one here too).
        case w2ku = 0x5732_6B75
        /// Mac alias blob.
        case mac = 0x4D61_6320
        /// Mac OS X URL, UTF-8 `file://`.
        case macx = 0x4D61_6358

        /// The four-letter name.
        public var name: String {
            switch self {
            case .none: "none"; case .wi2r: "Wi2r"; case .wi2k: "Wi2k"; case .w2ru: "W2ru"
            case .w2ku: "W2ku"; case .mac: "Mac "; case .macx: "MacX"
            }
        }
    }

    /// Platform code as stored (may be unknown in a corrupt file).
    public var rawCode: UInt32
    /// Space reserved for the data, as stored (sectors if < 512, bytes if a multiple of 512).
    public var dataSpace: UInt32
    /// Length of the locator data in bytes.
    public var dataLength: UInt32
    /// Reserved field.
    public var reserved: UInt32
    /// Absolute byte offset of the locator data.
    public var dataOffset: UInt64

    /// An empty slot.
    public static let empty = ParentLocator(rawCode: 0, dataSpace: 0, dataLength: 0, reserved: 0, dataOffset: 0)

    /// The decoded code, nil if unknown.
    public var code: Code? { Code(rawValue: rawCode) }

    /// Reserved space in bytes, or nil when the field is in neither unit.
    public var spaceInBytes: UInt64? {
        if dataSpace < 512 { return UInt64(dataSpace) * 512 }
        if dataSpace % 512 == 0 { return UInt64(dataSpace) }
        return nil
    }

    /// Decodes 24 bytes at `offset` of `b`.
    static func decode(_ b: [UInt8], at o: Int) -> ParentLocator {
        ParentLocator(rawCode: b.be32(o), dataSpace: b.be32(o + 4), dataLength: b.be32(o + 8),
                      reserved: b.be32(o + 12), dataOffset: b.be64(o + 16))
    }

    /// Encodes into `b` at `offset`.
    func encode(into b: inout [UInt8], at o: Int) {
        b.setBE32(rawCode, at: o); b.setBE32(dataSpace, at: o + 4); b.setBE32(dataLength, at: o + 8)
        b.setBE32(reserved, at: o + 12); b.setBE64(dataOffset, at: o + 16)
    }

    /// The bytes blktap stores under `code` for a path relative to the child's folder
    /// (`./p.vhd` or `../dir/p.vhd`).
    public static func payload(code: Code, relativePath: String) -> [UInt8] {
        switch code {
        case .macx: return Array(("file://" + relativePath).utf8)
        case .w2ku, .w2ru, .wi2k, .wi2r:
            let win = relativePath.replacingSlashes()
            return win.utf16.flatMap { [UInt8($0 & 0xff), UInt8($0 >> 8)] }
        default: return []
        }
    }

    /// Decodes a locator's data into a path (relative paths stay relative).
    public static func path(code: Code, data: [UInt8]) -> String? {
        switch code {
        case .macx:
            guard var s = String(validating: data.prefix { $0 != 0 }, as: UTF8.self) else { return nil }
            if s.hasPrefix("file://") { s.removeFirst(7) }
            return s
        case .w2ku, .w2ru, .wi2k, .wi2r:
            var units: [UInt16] = []
            var i = 0
            while i + 1 < data.count {
                let u = UInt16(data[i]) | UInt16(data[i + 1]) << 8
                if u == 0 { break }
                units.append(u); i += 2
            }
            guard var s = String(validating: units, as: UTF16.self) else { return nil }
            s = String(s.map { $0 == "\\" ? "/" : $0 })
            if s.count >= 2, s.dropFirst().first == ":" { s.removeFirst(2) }
            return s
        default: return nil
        }
    }
}

extension String {
    func replacingSlashes() -> String { String(map { $0 == "/" ? "\\" : $0 }) }
}
