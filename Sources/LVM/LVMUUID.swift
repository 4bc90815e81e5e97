/// A PV, VG or LV identifier: 32 characters of `[0-9a-zA-Z!#]`, shown in 6-4-4-4-4-4-6 groups.
public struct LVMUUID: Equatable, Hashable, Sendable, CustomStringConvertible {
    /// The 32 characters without dashes, as the PV header stores them.
    public let raw: String

    /// The characters new identifiers are drawn from.
    static let alphabet: [UInt8] = Array("0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8)

    /// Parses either form (dashes anywhere are ignored, as lvm2 does); nil unless 32 valid characters remain.
    public init?(_ text: String) {
        let chars = text.utf8.filter { $0 != UInt8(ascii: "-") }
        guard chars.count == 32, chars.allSatisfy(LVMUUID.valid) else { return nil }
        raw = String(decoding: chars, as: UTF8.self)
    }

    /// A new random identifier, as lvm2 makes them.
    public static func random() -> LVMUUID {
        var rng = SystemRandomNumberGenerator()
        let chars = (0..<32).map { _ in alphabet[Int(rng.next(upperBound: UInt64(alphabet.count)))] }
        return LVMUUID(String(decoding: chars, as: UTF8.self))!
    }

    /// Whether `c` may appear in an identifier.
    static func valid(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c == 0x21 || c == 0x23
    }

    /// The dashed 38-character form used in the text metadata.
    public var description: String {
        let c = Array(raw)
        var out = ""
        var i = 0
        for (n, group) in [6, 4, 4, 4, 4, 4, 6].enumerated() {
            if n > 0 { out.append("-") }
            out.append(contentsOf: c[i..<i + group]); i += group
        }
        return out
    }
}
