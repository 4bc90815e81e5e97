/// A VHD uuid: 16 raw bytes in RFC 4122 order, printed lower-case as XenServer does.
public struct VHDUUID: Hashable, Sendable, CustomStringConvertible {
    /// The 16 bytes.
    public let bytes: [UInt8]

    /// The all-zero uuid (a raw parent, or no parent).
    public static let null = VHDUUID(bytes: [UInt8](repeating: 0, count: 16))

    /// Wraps 16 bytes.
    public init(bytes: [UInt8]) {
        precondition(bytes.count == 16)
        self.bytes = bytes
    }

    /// A new random (version 4) uuid.
    public static func random() -> VHDUUID {
        var g = SystemRandomNumberGenerator()
        var b = (0..<16).map { _ in UInt8.random(in: 0...255, using: &g) }
        b[6] = (b[6] & 0x0f) | 0x40
        b[8] = (b[8] & 0x3f) | 0x80
        return VHDUUID(bytes: b)
    }

    /// Parses the canonical 36-character form.
    public init?(string: String) {
        let hex = string.filter { $0 != "-" }
        guard string.count == 36, hex.count == 32 else { return nil }
        var out: [UInt8] = []
        var it = hex.makeIterator()
        while let a = it.next(), let b = it.next() {
            guard let v = UInt8(String([a, b]), radix: 16) else { return nil }
            out.append(v)
        }
        self.bytes = out
    }

    /// Whether all bytes are zero.
    public var isNull: Bool { bytes.allSatisfy { $0 == 0 } }

    /// Lower-case canonical form.
    public var description: String {
        let h = bytes.map { b -> String in let s = String(b, radix: 16); return s.count == 1 ? "0" + s : s }
        return h[0..<4].joined() + "-" + h[4..<6].joined() + "-" + h[6..<8].joined() + "-" + h[8..<10].joined() + "-" + h[10..<16].joined()
    }
}
